package server

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/agentkernel-go/agentkernel/internal/backend/microvm"
	"github.com/agentkernel-go/agentkernel/internal/guest"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// runSetup is `agentkernel setup`: it prepares the guest microVMs boot
// (package guest) in the data root. It lives here, not in the CLI,
// because the guest's module reader links a zstd decoder that every CLI
// command would otherwise initialise.
func runSetup(root string, args []string) int {
	fl := flag.NewFlagSet("agentkernel setup", flag.ContinueOnError)
	var opts guest.PrepareOptions
	var modules string
	fl.StringVar(&opts.Kernel, "kernel", "", "use this kernel image (virtio built in) or unpacked kernel package instead of Debian's cloud kernel")
	fl.StringVar(&opts.Initrd, "initrd", "", "use this initramfs as the base (with --kernel); the agent is added as /init")
	fl.StringVar(&modules, "modules", "", "comma-separated kernel modules to load in the guest besides the defaults")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "agentkernel setup: unexpected arguments:", strings.Join(fl.Args(), " "))
		return 2
	}
	for _, m := range strings.Split(modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			opts.Modules = append(opts.Modules, m)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if root == "" {
		var err error
		if root, err = setup.DefaultRoot(os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "agentkernel setup:", err)
			return 1
		}
	}
	dir := microvm.GuestDir(root)
	fmt.Fprintf(os.Stderr, "preparing the microVM guest in %s\n", dir)
	g, err := guest.Prepare(ctx, dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentkernel setup:", err)
		return 1
	}
	kernel := g.KernelRelease
	if g.KernelPackage != "" {
		kernel += " (" + g.KernelPackage + " " + g.KernelPackageVersion + ")"
	}
	fmt.Printf("microVM guest ready: kernel %s, busybox %s, %d modules\n", kernel, g.BusyboxVersion, len(g.Modules))
	return 0
}
