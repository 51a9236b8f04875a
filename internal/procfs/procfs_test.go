package procfs

import (
	"os"
	"os/exec"
	"testing"
)

func TestStatAndAlive(t *testing.T) {
	state, start, err := Stat(os.Getpid())
	if err != nil || start == 0 || (state != 'R' && state != 'S') {
		t.Fatalf("self: %c %d %v", state, start, err)
	}
	if !Alive(os.Getpid(), start) || Alive(os.Getpid(), start+1) {
		t.Fatal("Alive does not check the start time")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_, childStart, _ := Stat(cmd.Process.Pid)
	cmd.Wait()
	if Alive(cmd.Process.Pid, childStart) {
		t.Fatal("a reaped child reads as alive")
	}
	if _, _, err := Stat(1 << 30); err == nil {
		t.Fatal("no error for a missing pid")
	}
}
