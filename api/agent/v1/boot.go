package v1

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A microVM's agent is the guest's init and learns what the host wants from
// the kernel command line (agentkernel.KEY=VALUE words) and from the serial
// numbers of its virtio-blk disks. BootConfig is that contract, written by
// the host's microvm backend and read by the agent.
type BootConfig struct {
	// Port names the virtio-serial ports the agent serves ("NAME.0", ...).
	Port string
	// Hostname is the guest's host name.
	Hostname string
	// Layers is how many image layer disks the guest has (serials
	// LayerSerial(0..Layers-1), topmost first). Zero: the root's lower
	// layer is the guest's own userland, carried by its initramfs.
	Layers int
	// ReadOnly mounts the root read-only.
	ReadOnly bool
	// PidsLimit caps the sandbox's processes (0: no cap).
	PidsLimit int
	// CPUPercent caps the sandbox's CPU time in percent of its vCPUs (0 or
	// 100: no cap).
	CPUPercent int
	// StrictCaps gives sandbox root the restrictive profile's capabilities.
	StrictCaps bool
	// AllowPtrace lets processes trace their own descendants.
	AllowPtrace bool
	// Addrs, Gateways and DNS configure the guest's one network interface
	// (eth0) with its MTU; without addresses it has none to configure.
	Addrs    []netip.Prefix
	Gateways []netip.Addr
	DNS      []netip.Addr
	MTU      int
}

// Disk serial numbers the host gives a microVM's disks.
const (
	// UpperSerial is the sandbox's writable disk, where the root's changes
	// live across stop and start. Without it they live in memory.
	UpperSerial = "ak-upper"
	layerSerial = "ak-layer-"
)

// LayerSerial is the serial number of image layer disk i (0 is the topmost).
func LayerSerial(i int) string { return layerSerial + strconv.Itoa(i) }

const bootPrefix = "agentkernel."

// Cmdline renders c as kernel command line words.
func (c BootConfig) Cmdline() string {
	var w []string
	add := func(k, v string) { w = append(w, bootPrefix+k+"="+v) }
	if c.Port != "" {
		add("port", c.Port)
	}
	if c.Hostname != "" {
		add("hostname", c.Hostname)
	}
	if c.Layers > 0 {
		add("layers", strconv.Itoa(c.Layers))
	}
	if c.ReadOnly {
		add("ro", "1")
	}
	if c.PidsLimit > 0 {
		add("pids", strconv.Itoa(c.PidsLimit))
	}
	if c.CPUPercent > 0 && c.CPUPercent < 100 {
		add("cpu", strconv.Itoa(c.CPUPercent))
	}
	if c.StrictCaps {
		add("caps", "strict")
	}
	if c.AllowPtrace {
		add("ptrace", "1")
	}
	list := func(k string, n int, at func(int) string) {
		if n == 0 {
			return
		}
		s := make([]string, n)
		for i := range s {
			s[i] = at(i)
		}
		add(k, strings.Join(s, ","))
	}
	list("addrs", len(c.Addrs), func(i int) string { return c.Addrs[i].String() })
	list("gw", len(c.Gateways), func(i int) string { return c.Gateways[i].String() })
	list("dns", len(c.DNS), func(i int) string { return c.DNS[i].String() })
	if c.MTU > 0 {
		add("mtu", strconv.Itoa(c.MTU))
	}
	return strings.Join(w, " ")
}

// ParseBootConfig reads the agentkernel.* words of a kernel command line;
// other words are the kernel's and are ignored.
func ParseBootConfig(cmdline string) (BootConfig, error) {
	var c BootConfig
	for _, word := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(word, "=")
		if !ok || !strings.HasPrefix(k, bootPrefix) {
			continue
		}
		var err error
		switch strings.TrimPrefix(k, bootPrefix) {
		case "port":
			c.Port = v
		case "hostname":
			c.Hostname = v
		case "layers":
			c.Layers, err = strconv.Atoi(v)
		case "ro":
			c.ReadOnly = v == "1"
		case "pids":
			c.PidsLimit, err = strconv.Atoi(v)
		case "cpu":
			c.CPUPercent, err = strconv.Atoi(v)
		case "caps":
			c.StrictCaps = v == "strict"
		case "ptrace":
			c.AllowPtrace = v == "1"
		case "addrs":
			c.Addrs, err = parseList(v, netip.ParsePrefix)
		case "gw":
			c.Gateways, err = parseList(v, netip.ParseAddr)
		case "dns":
			c.DNS, err = parseList(v, netip.ParseAddr)
		case "mtu":
			c.MTU, err = strconv.Atoi(v)
		}
		if err != nil {
			return c, fmt.Errorf("kernel parameter %s: %w", word, err)
		}
	}
	if c.Layers < 0 || c.PidsLimit < 0 || c.CPUPercent < 0 || c.MTU < 0 {
		return c, fmt.Errorf("negative value in the agentkernel.* kernel parameters")
	}
	if c.CPUPercent >= 100 {
		c.CPUPercent = 0 // all of its vCPUs: no cap
	}
	return c, nil
}

// parseList parses a comma-separated list; empty is none.
func parseList[T any](v string, parse func(string) (T, error)) ([]T, error) {
	if v == "" {
		return nil, nil
	}
	var out []T
	for _, s := range strings.Split(v, ",") {
		x, err := parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}
