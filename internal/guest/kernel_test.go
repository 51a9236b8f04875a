package guest

import (
	"context"
	"errors"
	"os"
	"testing"
)

// A failed fetch must leave dir as it found it: callers point dir at a
// cache they share with other sandboxes.
func TestFetchDebianKernelCleansUp(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FetchDebianKernel(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}
