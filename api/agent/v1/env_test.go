package v1

import (
	"slices"
	"testing"
)

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "HOME=/root"}, nil, []string{"FOO=1", "PATH=/x", "FOO=2", "EMPTY="}, []string{"HOME=/h"})
	want := []string{"PATH=/x", "HOME=/h", "FOO=2", "EMPTY="}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
