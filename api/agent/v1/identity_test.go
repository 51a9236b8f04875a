package v1

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

func TestIdentityRoundTrip(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	want := Identity{Seed: []byte{1, 2, 3, 250}, Time: time.Unix(1795877296, 123456789), Hostname: "vm-2"}
	got := make(chan Identity, 1)
	go func() {
		buf := make([]byte, 256)
		n, _ := guest.Read(buf)
		id, err := ParseIdentity(string(buf[:n]))
		if err != nil {
			guest.Write([]byte("error " + err.Error() + "\n"))
			return
		}
		got <- id
		guest.Write([]byte("ok\n"))
	}()
	if err := SendIdentity(context.Background(), host, want); err != nil {
		t.Fatal(err)
	}
	id := <-got
	if !bytes.Equal(id.Seed, want.Seed) || !id.Time.Equal(want.Time) || id.Hostname != want.Hostname {
		t.Fatalf("got %+v, want %+v", id, want)
	}
}

func TestIdentityRefusals(t *testing.T) {
	for _, line := range []string{"", "identity", "identity zz 1 h", "identity 00 x h", "hello 00 1 h", "identity  1 h"} {
		if _, err := ParseIdentity(line); err == nil {
			t.Errorf("%q accepted", line)
		}
	}
	if err := SendIdentity(context.Background(), nil, Identity{Seed: []byte{1}, Hostname: "two words"}); err == nil {
		t.Error("a host name with a space was sent")
	}
}
