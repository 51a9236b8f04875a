//go:build linux

package guest

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// BenchmarkColdBoot times a microVM from QEMU's start until its agent has
// answered an exec, then kills it: the cold-start floor of the microvm
// backend (no image disk; the base initramfs is the root).
//
//	go test -run '^$' -bench ColdBoot -benchtime 10x ./internal/guest/
func BenchmarkColdBoot(b *testing.B) {
	requireQEMU(b)
	ctx := context.Background()
	g := preparedGuest(b)
	dir := b.TempDir()
	initrd := bootInitrd(b, g.Initrd, testutil.BuildBinary(b, "agentkernel-agent"), filepath.Join(dir, "boot.img"))
	accel, _ := qemu.ChooseAccel()
	vmDir := filepath.Join(dir, "vm")
	b.ResetTimer()
	for b.Loop() {
		vm, err := qemu.Start(ctx, qemu.Config{Dir: vmDir, Kernel: filepath.Join(filepath.Dir(g.Kernel), VmlinuxFile), Initrd: initrd,
			VCPUs: 1, MemoryMiB: 256, Accel: accel, AgentPort: "agentkernel"})
		if err != nil {
			b.Fatal(err)
		}
		c := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return qemu.DialAgent(ctx, vmDir) })
		ectx, cancel := context.WithTimeout(ctx, time.Minute)
		st, err := c.Exec(ectx, agentv1.ExecSpec{Args: []string{"/init", "-version"}}, nil, io.Discard, io.Discard)
		cancel()
		c.Close()
		b.StopTimer()
		vm.Kill()
		vm.Close()
		qemu.Remove(vmDir)
		if err != nil || st.Code != 0 {
			b.Fatalf("exec: %v %+v", err, st)
		}
		b.StartTimer()
	}
}
