package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// doctorBackend is one backend's line in `doctor --json`.
type doctorBackend struct {
	Backend   sandbox.Type `json:"backend"`
	Isolation string       `json:"isolation"`
	Built     bool         `json:"built"`
	Usable    bool         `json:"usable"`
	Reason    string       `json:"reason,omitempty"`
	// NotAuto says why a usable backend is only used when asked for.
	NotAuto string `json:"not_auto,omitempty"`
}

// doctorReport is `doctor --json`.
type doctorReport struct {
	Chosen     sandbox.Type    `json:"chosen"`
	Agent      string          `json:"agent,omitempty"`
	AgentError string          `json:"agent_error,omitempty"`
	Backends   []doctorBackend `json:"backends"`
	// Network is the sandbox network path: usable, or why not.
	Network doctorNetwork `json:"network"`
	// MicroVM is what microVMs would run on: QEMU and its accelerator.
	MicroVM doctorMicroVM `json:"microvm"`
}

// doctorMicroVM is the microVM part of `doctor --json`.
type doctorMicroVM struct {
	QEMU        string `json:"qemu,omitempty"`
	QEMUError   string `json:"qemu_error,omitempty"`
	Accelerator string `json:"accelerator"`
	Reason      string `json:"accelerator_reason"`
}

// doctorNetwork is the network path's part of `doctor --json`.
type doctorNetwork struct {
	Mechanism string `json:"mechanism"`
	Usable    bool   `json:"usable"`
	Reason    string `json:"reason,omitempty"`
	// Daemon tells whether the network daemon runs now (it starts when
	// a sandbox needs it), and Sandboxes how many it serves.
	Daemon    bool `json:"daemon_running"`
	Sandboxes int  `json:"networked_sandboxes"`
}

func (a *app) newDoctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check which sandbox backends can run on this host, and why not",
		Long: `Doctor probes every backend agentkernel knows, says for each whether it can run
sandboxes here and exactly why not, and which one auto-detection picks. It also
locates the agent binary. It exits 0 when at least one backend is usable.`,
		Args: exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			chosen, choices := mgr.Doctor(cmd.Context())
			rep := doctorReport{Chosen: chosen, Backends: []doctorBackend{}}
			if agent, err := setup.FindAgent(a.getenv); err != nil {
				rep.AgentError = err.Error()
			} else {
				rep.Agent = agent
			}
			for _, c := range choices {
				b := doctorBackend{Backend: c.Type, Isolation: isolationName(c.Isolation), Built: c.Built, Usable: c.Err == nil}
				if c.Err != nil {
					b.Reason = c.Err.Error()
				}
				if c.NotAuto != nil {
					b.NotAuto = c.NotAuto.Error()
				}
				rep.Backends = append(rep.Backends, b)
			}
			rep.Network = doctorNetwork{Mechanism: "userspace TCP/IP stack (gVisor netstack) on a TAP device, in agentkernel-server net", Usable: true}
			if err := setup.NetworkUnavailable(a.getenv); err != nil {
				rep.Network.Usable, rep.Network.Reason = false, err.Error()
			}
			qemuPath, qemuErr, accel, why := setup.MicroVM()
			rep.MicroVM = doctorMicroVM{QEMU: qemuPath, Accelerator: string(accel), Reason: why}
			if qemuErr != nil {
				rep.MicroVM.QEMUError = qemuErr.Error()
			}
			if st, err := mgr.Daemons(cmd.Context()); err == nil {
				rep.Network.Daemon, rep.Network.Sandboxes = st.Network, len(st.Networked)
			}
			if asJSON {
				if err := writeJSON(a.stdout, rep); err != nil {
					return err
				}
			} else {
				writeDoctor(a, rep)
			}
			switch {
			case rep.AgentError != "":
				return fmt.Errorf("sandboxes cannot start without the agent binary: %w", errdefs.ErrUnavailable)
			case chosen == "":
				return fmt.Errorf("no sandbox backend can run on this host: %w", errdefs.ErrUnavailable)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeDoctor(a *app, rep doctorReport) {
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "BACKEND\tISOLATION\tSTATUS")
	for _, b := range rep.Backends {
		status := "usable"
		if !b.Usable {
			status = "not usable: " + oneLine(b.Reason)
		} else if b.NotAuto != "" {
			status = "usable when asked for: " + oneLine(b.NotAuto)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Backend, b.Isolation, status)
	}
	tw.Flush()
	fmt.Fprintln(a.stdout)
	if rep.AgentError != "" {
		fmt.Fprintf(a.stdout, "agent binary:          MISSING: %s\n", oneLine(rep.AgentError))
	} else {
		fmt.Fprintf(a.stdout, "agent binary:          %s\n", rep.Agent)
	}
	chosen := string(rep.Chosen)
	if chosen == "" {
		chosen = "none (no backend is usable)"
	}
	fmt.Fprintf(a.stdout, "auto-detection picks:  %s\n", chosen)
	if rep.Network.Usable {
		fmt.Fprintf(a.stdout, "sandbox network:       usable: %s\n", rep.Network.Mechanism)
	} else {
		fmt.Fprintf(a.stdout, "sandbox network:       NOT USABLE (sandboxes get loopback only): %s\n", oneLine(rep.Network.Reason))
	}
	daemon := "not running (starts with the first sandbox with network on)"
	if rep.Network.Daemon {
		daemon = fmt.Sprintf("running, serving %d sandboxes", rep.Network.Sandboxes)
	}
	fmt.Fprintf(a.stdout, "network daemon:        %s\n", daemon)
	if rep.MicroVM.QEMUError != "" {
		fmt.Fprintf(a.stdout, "microVM QEMU:          MISSING: %s\n", oneLine(rep.MicroVM.QEMUError))
	} else {
		fmt.Fprintf(a.stdout, "microVM QEMU:          %s\n", rep.MicroVM.QEMU)
	}
	fmt.Fprintf(a.stdout, "microVM acceleration:  %s (%s)\n", rep.MicroVM.Accelerator, oneLine(rep.MicroVM.Reason))
}

// isolationName names an isolation rank for people.
func isolationName(i sandbox.Isolation) string {
	switch i {
	case sandbox.IsolationVM:
		return "vm"
	case sandbox.IsolationUserKernel:
		return "user-space-kernel"
	case sandbox.IsolationNative:
		return "namespaces"
	case sandbox.IsolationContainer:
		return "container"
	}
	return "-"
}
