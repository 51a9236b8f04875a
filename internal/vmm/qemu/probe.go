package qemu

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ProbeKVM tells whether guests can run under KVM here, and if not, why.
//
// /dev/kvm is not enough: under PVM (a KVM that runs guests without
// hardware virtualisation, as in some cloud VMs) the device opens and
// creates VMs, yet stock guest kernels never boot. Hardware
// virtualisation shows as the vmx or svm CPU flag, so both are required.
func ProbeKVM() (ok bool, reason string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Sprintf("/dev/kvm: %v", err)
	}
	defer f.Close()
	// KVM_GET_API_VERSION has been 12 since Linux 2.6.22; anything else
	// is not a KVM QEMU knows.
	const kvmGetAPIVersion = 0xae00
	if v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion); err != nil || v != 12 {
		return false, fmt.Sprintf("/dev/kvm: API version %d (%v), want 12", v, err)
	}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false, fmt.Sprintf("reading /proc/cpuinfo: %v", err)
	}
	if !hasHardwareVirt(cpuinfo) {
		return false, "/dev/kvm is there, but the CPU has no hardware virtualisation (no vmx or svm flag: PVM or nested virtualisation off); guests would not boot"
	}
	return true, "/dev/kvm with hardware virtualisation"
}

func hasHardwareVirt(cpuinfo []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, flags, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(bytes.TrimSpace(key)) != "flags" {
			continue
		}
		for _, f := range bytes.Fields(flags) {
			if string(f) == "vmx" || string(f) == "svm" {
				return true
			}
		}
		return false // the first CPU speaks for all
	}
	return false
}

// ChooseAccel is KVM where ProbeKVM allows it, else software emulation,
// with the reason.
func ChooseAccel() (Accel, string) {
	ok, why := ProbeKVM()
	if ok {
		return AccelKVM, why
	}
	return AccelTCG, "software emulation (TCG): " + why
}

// hostTSCkHz is the host CPU's clock in kHz as /proc/cpuinfo reports it
// (the TSC's rate on CPUs with a constant TSC), or 0 if unknown.
func hostTSCkHz() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil || mhz <= 0 {
				return 0
			}
			return int(mhz * 1000)
		}
	}
	return 0
}
