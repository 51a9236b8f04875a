package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// monitor is a connection to QEMU's QMP socket: JSON objects one after
// another, a greeting first, then a reply to each command, with events
// in between. It is this small on purpose: the Go QMP library there is
// (digitalocean/go-qemu) links a libvirt client, megabytes that every
// command of the CLI would load.
type monitor struct {
	mu   sync.Mutex // one command at a time
	conn net.Conn
	dec  *json.Decoder
	enc  *json.Encoder
}

// QMPError is an error QEMU answered a command with.
type QMPError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *QMPError) Error() string { return e.Class + ": " + e.Desc }

// dialMonitor connects to the socket at path and leaves capabilities
// negotiation mode, after which QEMU takes commands.
func dialMonitor(ctx context.Context, path string) (*monitor, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	m := &monitor{conn: conn, dec: json.NewDecoder(conn), enc: json.NewEncoder(conn)}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := m.dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("no QMP greeting on %s (%v)", path, err)
	}
	conn.SetDeadline(time.Time{})
	if err := m.execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

// execute runs command with args (nil for none) and decodes what it
// returns into ret (nil to ignore it).
func (m *monitor) execute(ctx context.Context, command string, args, ret any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A deadline in the past ends a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { m.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{command, args}
	if err := m.enc.Encode(req); err != nil {
		return m.fail(ctx, command, err)
	}
	for {
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *QMPError       `json:"error"`
			Event  string          `json:"event"`
		}
		if err := m.dec.Decode(&resp); err != nil {
			return m.fail(ctx, command, err)
		}
		switch {
		case resp.Event != "":
			continue // events are not used (yet)
		case resp.Error != nil:
			return fmt.Errorf("QMP %s: %w", command, resp.Error)
		case ret != nil:
			if err := json.Unmarshal(resp.Return, ret); err != nil {
				return fmt.Errorf("QMP %s: reply: %w", command, err)
			}
		}
		return nil
	}
}

func (m *monitor) fail(ctx context.Context, command string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return fmt.Errorf("QMP %s: %w", command, err)
}

func (m *monitor) close() error { return m.conn.Close() }
