package v1

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// A session over a serial port starts clean whatever the stream carried
// before: stale bytes both ways are dropped, repeated sync records too,
// and what follows the sync arrives intact.
func TestSerialSyncDropsAnEarlierSession(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	type result struct {
		c   net.Conn
		err error
	}
	guestDone := make(chan result, 1)
	go func() {
		// The guest first talks in its old session, then syncs. What
		// it reads before the sync is the host's stale bytes, dropped.
		go guest.Write([]byte("old session's GOAWAY"))
		c, err := AcceptSerial(guest)
		guestDone <- result{c, err}
	}()
	if _, err := host.Write([]byte("stale request bytes")); err != nil { // before the sync, as on a real port
		t.Fatal(err)
	}

	hc, err := SyncSerial(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	// The host speaks first after the sync (HTTP/2's preface); the guest
	// drops the record's repeats before it.
	go hc.Write([]byte("PRI * HTTP/2.0"))
	g := <-guestDone
	if g.err != nil {
		t.Fatal(g.err)
	}
	got := make([]byte, len("PRI * HTTP/2.0"))
	if _, err := io.ReadFull(g.c, got); err != nil || string(got) != "PRI * HTTP/2.0" {
		t.Fatalf("guest read %q, %v", got, err)
	}
	go g.c.Write([]byte("SETTINGS"))
	got = make([]byte, len("SETTINGS"))
	if _, err := io.ReadFull(hc, got); err != nil || !bytes.Equal(got, []byte("SETTINGS")) {
		t.Fatalf("host read %q, %v", got, err)
	}
}

// A host client that syncs and leaves at once, before the guest sees the
// port close, must not keep the next client from its own sync: the guest
// still waiting in the first session's sync answers the second's.
func TestSerialSyncAnswersASessionThatFollowsAtOnce(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() {
		c, err := AcceptSerial(guest)
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, len("PRI * HTTP/2.0")))
		}
		accepted <- err
	}()
	if _, err := SyncSerial(ctx, host); err != nil { // and leaves without a byte
		t.Fatal(err)
	}
	second, err := SyncSerial(ctx, host)
	if err != nil {
		t.Fatalf("the second session's sync: %v", err)
	}
	go second.Write([]byte("PRI * HTTP/2.0"))
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

func TestSerialSyncGivesUpWithItsContext(t *testing.T) {
	host, guest := net.Pipe()
	defer guest.Close()
	go io.Copy(io.Discard, guest) // a guest that never answers
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := SyncSerial(ctx, host); err == nil {
		t.Fatal("sync with a silent guest succeeded")
	}
}
