package firecracker

import (
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// Probe tells whether Firecracker can run VMs here, and if not, why:
// binary (empty: firecracker on PATH) must be there, and KVM must run
// guests. Firecracker has no software emulation to fall back on, and
// qemu.ProbeKVM is the one place that knows /dev/kvm alone is not enough.
func Probe(binary string) (ok bool, reason string) {
	bin, err := Find(binary)
	if err != nil {
		return false, err.Error()
	}
	if ok, why := qemu.ProbeKVM(); !ok {
		return false, "firecracker needs KVM: " + why
	}
	return true, bin + " with KVM"
}
