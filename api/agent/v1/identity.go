package v1

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// A microVM restored from a saved state wakes up as the VM that was saved:
// same random state, same clock, same name. Before anything else runs in
// it, the host gives it its own identity over the control port (a
// virtio-serial port served by the guest's init, not by the sandbox's
// agent: only init may reseed the kernel's RNG and set the clock).

// ControlPort is the name of the control port, less its ".0".
const ControlPort = "agentkernel-ctl"

// Identity is what makes a restored VM its own.
type Identity struct {
	// Seed is mixed into the kernel's RNG, which is then reseeded.
	Seed []byte
	// Time sets the clock.
	Time time.Time
	// Hostname is the VM's new host name.
	Hostname string
}

// line is Identity on the wire: one line, answered by "ok" or "error ...".
func (id Identity) line() string {
	return fmt.Sprintf("identity %s %d %s\n", hex.EncodeToString(id.Seed), id.Time.UnixNano(), id.Hostname)
}

// ParseIdentity reads the line SendIdentity writes.
func ParseIdentity(line string) (Identity, error) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "identity" {
		return Identity{}, fmt.Errorf("control: not an identity: %q", line)
	}
	seed, err := hex.DecodeString(f[1])
	if err != nil || len(seed) == 0 || len(seed) > 512 {
		return Identity{}, fmt.Errorf("control: bad seed")
	}
	ns, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("control: bad time: %w", err)
	}
	return Identity{Seed: seed, Time: time.Unix(0, ns), Hostname: f[3]}, nil
}

// SendIdentity gives the guest on c (a synced control port session) its
// identity and waits until it has taken it.
func SendIdentity(ctx context.Context, c net.Conn, id Identity) error {
	if len(id.Seed) == 0 || id.Hostname == "" || strings.ContainsAny(id.Hostname, " \n") {
		return fmt.Errorf("control: identity needs a seed and a one-word host name")
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write([]byte(id.line())); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if reply = strings.TrimSpace(reply); reply != "ok" {
		return fmt.Errorf("control: the guest answered %q", reply)
	}
	return nil
}
