package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// selfSignedValidity is how long a --tls-self-signed certificate is valid.
// It is made afresh at every start, so it never needs to last long.
const selfSignedValidity = 90 * 24 * time.Hour

// selfSignedCert makes an ECDSA P-256 certificate, in memory, for the
// address being served: the host itself, and for a loopback or wildcard
// host also localhost, 127.0.0.1, ::1 and the machine's host name.
func selfSignedCert(host string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating TLS serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "agentkernel"},
		NotBefore:             now.Add(-time.Hour), // clock skew
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	addName := func(n string) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	h := strings.Trim(host, "[]")
	ip := net.ParseIP(h)
	switch {
	case h == "" || h == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()):
		for _, n := range []string{"localhost", "127.0.0.1", "::1"} {
			addName(n)
		}
		if hn, err := os.Hostname(); err == nil && hn != "localhost" {
			addName(hn)
		}
		if ip != nil && ip.IsLoopback() && !ip.Equal(net.IPv4(127, 0, 0, 1)) && !ip.Equal(net.IPv6loopback) {
			addName(h)
		}
	default:
		addName(h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint is a certificate's SHA-256 fingerprint as clients pin it:
// upper-case hex bytes joined by colons (openssl x509 -fingerprint -sha256).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
