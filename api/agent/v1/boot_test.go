package v1

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestBootConfigRoundTrip(t *testing.T) {
	for _, c := range []BootConfig{
		{},
		{Port: "agentkernel", Hostname: "dev-1", Layers: 3, ReadOnly: true, PidsLimit: 64, CPUPercent: 50, StrictCaps: true, AllowPtrace: true},
		{Port: "p", CPUPercent: 100}, // 100 means no cap and is not written
		{
			Addrs:    []netip.Prefix{netip.MustParsePrefix("10.0.2.15/24"), netip.MustParsePrefix("fd61:6b00::15/64")},
			Gateways: []netip.Addr{netip.MustParseAddr("10.0.2.2")}, DNS: []netip.Addr{netip.MustParseAddr("fd61:6b00::3")}, MTU: 65520,
		},
	} {
		line := "console=ttyS0 panic=-1 " + c.Cmdline() + " quiet"
		got, err := ParseBootConfig(line)
		if err != nil {
			t.Fatal(err)
		}
		if c.CPUPercent == 100 {
			c.CPUPercent = 0
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%q parsed as %+v, want %+v", line, got, c)
		}
	}
}

func TestParseBootConfigRejects(t *testing.T) {
	for _, line := range []string{"agentkernel.layers=x", "agentkernel.pids=-1", "agentkernel.cpu=1e3", "agentkernel.addrs=10.0.2.15", "agentkernel.gw=x"} {
		if _, err := ParseBootConfig(line); err == nil {
			t.Errorf("%q accepted", line)
		}
	}
}

func FuzzParseBootConfig(f *testing.F) {
	f.Add("agentkernel.layers=2 agentkernel.port=x agentkernel.hostname=h")
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseBootConfig(line)
		if err != nil {
			return
		}
		again, err := ParseBootConfig(c.Cmdline())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", c.Cmdline(), err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("%q: parsed %+v, its rendering %q parsed %+v", line, c, c.Cmdline(), again)
		}
	})
}
