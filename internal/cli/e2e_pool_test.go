package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// runPooled runs agentkernel with the warm pool on.
func (e *e2e) runPooled(args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := e.command(ctx, args...)
	c.Env = append(c.Env, "AGENTKERNEL_POOL=1") // the last value wins
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		e.t.Fatalf("agentkernel %q: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// waitPool waits until the only sandbox is one unclaimed, started pool
// sandbox (the background maintainer removed the finished run and
// refilled) and returns its name.
func (e *e2e) waitPool(not string) string {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var infos []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Pooled bool   `json:"pooled"`
		}
		json.Unmarshal([]byte(e.ok("list", "--all", "--json")), &infos)
		if len(infos) == 1 && infos[0].Pooled && infos[0].Status == "running" && infos[0].Name != not {
			return infos[0].Name
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pool never settled: %+v", infos)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunWarmPool(t *testing.T) {
	e := newE2E(t)
	if out := e.runPooled("run", "--", "echo", "hello"); out != "hello\n" {
		t.Fatalf("first run: %q", out)
	}
	warm := e.waitPool("")
	if infos := e.list(); len(infos) != 0 {
		t.Fatalf("list without --all shows pool sandboxes: %v", infos)
	}
	// The next run claims the warm sandbox: its hostname is the sandbox name.
	if out := e.runPooled("run", "-e", "X=1", "--", "sh", "-c", "echo $X; hostname"); out != "1\n"+warm+"\n" {
		t.Fatalf("second run printed %q, want it to run in %s", out, warm)
	}
	next := e.waitPool(warm)
	// The first run's maintainer lingers and took the second run's
	// sandbox: still one maintainer.
	if n := maintainers(e.root); n != 1 {
		t.Fatalf("%d pool maintainers after two runs, want the one lingering", n)
	}
	if out := e.ok("pool", "drain"); strings.TrimSpace(out) != next {
		t.Fatalf("drain removed %q, want %s", out, next)
	}
	if n := maintainers(e.root); n != 0 {
		t.Fatalf("%d pool maintainers after drain", n)
	}
	if out := e.ok("list", "--all", "--quiet"); out != "" {
		t.Fatalf("after drain: %q", out)
	}
}

// A run whose agentkernel process is killed outright (no cleanup runs)
// leaves a sandbox that gc recognises as garbage: its owner is gone.
func TestRunKilledThenGC(t *testing.T) {
	e := newE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := e.command(ctx, "run", "--", "sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if infos := e.list(); len(infos) == 1 && infos[0]["status"] == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run's sandbox never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the command is running now
	c.Process.Kill()                   // SIGKILL: no chance to clean up
	c.Wait()
	if infos := e.list(); len(infos) != 1 {
		t.Fatalf("after the kill: %v", infos)
	}
	e.ok("gc")
	if infos := e.list(); len(infos) != 0 {
		t.Fatalf("gc left the orphaned run sandbox: %v", infos)
	}
}

// maintainers counts the pool maintainer processes of a data root.
func maintainers(root string) int {
	n := 0
	for _, p := range mentions(root) {
		if strings.Contains(p, "pool maintain") {
			n++
		}
	}
	return n
}
