package image

import (
	"context"
	"testing"
)

// BenchmarkResolveHost is the cost of resolving the host image once its
// skeleton exists: the staleness check.
func BenchmarkResolveHost(b *testing.B) {
	s := NewStore(b.TempDir(), Options{})
	if _, err := s.Resolve(context.Background(), "host"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Resolve(context.Background(), "host"); err != nil {
			b.Fatal(err)
		}
	}
}
