package v1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"time"
)

// A serial port (virtio-serial) is one byte stream for the VM's life, not
// a connection: when a host client leaves and the next one comes at once,
// the guest may never see the gap, and the new client's first bytes would
// land in the agent's session with the old one. So a session over a serial
// port starts with a sync: the host sends SyncMagic and a fresh nonce (a
// sync record) until the guest echoes that record back; each side then
// drops whatever came before it, and the guest drops repeated records.
// HTTP/2 starts after that.

// SyncMagic starts a sync record.
const SyncMagic = "AKSYNC01"

// SyncRecordLen is a sync record's size: the magic and an 8-byte nonce.
const SyncRecordLen = len(SyncMagic) + 8

// syncResend is how often the host repeats its record: the guest may be
// still booting, or finishing its previous session.
const syncResend = 50 * time.Millisecond

// SyncSerial starts a session on c, a fresh connection to a serial port,
// and returns the connection to speak HTTP/2 on. On error c is closed.
func SyncSerial(ctx context.Context, c net.Conn) (net.Conn, error) {
	rec := make([]byte, SyncRecordLen)
	copy(rec, SyncMagic)
	rand.Read(rec[len(SyncMagic):])
	done := make(chan struct{})
	var resending sync.WaitGroup
	// The resender must be gone before HTTP/2 starts: a record written
	// after the first bytes of HTTP/2 would corrupt the stream.
	defer resending.Wait()
	defer close(done)
	resending.Add(1)
	go func() { // resend until echoed
		defer resending.Done()
		t := time.NewTicker(syncResend)
		defer t.Stop()
		for {
			if _, err := c.Write(rec); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				c.SetReadDeadline(time.Unix(1, 0))
				return
			case <-t.C:
			}
		}
	}()
	br := bufio.NewReader(c)
	var window []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			c.Close()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("serial sync: %w", err)
		}
		window = append(window, b)
		if len(window) > SyncRecordLen {
			window = window[1:]
		}
		if bytes.Equal(window, rec) {
			return &bufferedConn{Conn: c, r: br}, nil
		}
	}
}

// AcceptSerial is the guest's half of SyncSerial on c, a serial port just
// opened: it waits for a sync record (dropping what comes before it, the
// tail of an earlier session), echoes it, and drops the repeats the host
// sent before the echo reached it. A record with another nonce is a new
// session that started before the guest saw this one end (a host client
// that synced and left at once): it is echoed in turn. HTTP/2 follows.
func AcceptSerial(c net.Conn) (net.Conn, error) {
	br := bufio.NewReaderSize(c, 4096)
	var window []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		window = append(window, b)
		if len(window) > SyncRecordLen {
			window = window[1:]
		}
		if len(window) == SyncRecordLen && string(window[:len(SyncMagic)]) == SyncMagic {
			break
		}
	}
	rec := window
	for {
		if rec != nil {
			if _, err := c.Write(rec); err != nil {
				return nil, err
			}
		}
		head, err := br.Peek(len(SyncMagic))
		if err != nil {
			return nil, err
		}
		if string(head) != SyncMagic {
			return &bufferedConn{Conn: c, r: br}, nil
		}
		next, err := br.Peek(SyncRecordLen)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(next, window) {
			rec = nil // a repeat
		} else {
			window = bytes.Clone(next)
			rec = window
		}
		if _, err := br.Discard(SyncRecordLen); err != nil {
			return nil, err
		}
	}
}

// bufferedConn reads what its reader buffered before the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
