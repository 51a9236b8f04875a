package agent

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

const testPasswd = `root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh
broken line
bad:x:notanumber:0::/:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`

const testGroup = `root:x:0:
alice:x:1000:
wheel:x:10:alice, bob
docker:x:999:bob,alice
users:x:100:
nogroup:x:65534:
`

func testDB() userDB {
	return userDB{passwd: parsePasswd([]byte(testPasswd)), group: parseGroup([]byte(testGroup))}
}

func TestResolveUser(t *testing.T) {
	db := testDB()
	for _, tc := range []struct {
		spec string
		want identity
	}{
		{"", identity{uid: 0, gid: 0, name: "root", home: "/root"}},
		{"root", identity{uid: 0, gid: 0, groups: []int{0}, name: "root", home: "/root"}},
		{"alice", identity{uid: 1000, gid: 1000, groups: []int{1000, 10, 999}, name: "alice", home: "/home/alice"}},
		{"alice:users", identity{uid: 1000, gid: 100, groups: []int{100, 10, 999}, name: "alice", home: "/home/alice"}},
		{"1000", identity{uid: 1000, gid: 1000, name: "alice", home: "/home/alice"}},
		{"1000:5", identity{uid: 1000, gid: 5, name: "alice", home: "/home/alice"}},
		{"65534:65534", identity{uid: 65534, gid: 65534, name: "nobody", home: "/nonexistent"}},
		{"4242", identity{uid: 4242, gid: 4242}},
		{"0", identity{uid: 0, gid: 0, name: "root", home: "/root"}},
	} {
		got, err := db.resolve(tc.spec, 0)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got.uid != tc.want.uid || got.gid != tc.want.gid || got.name != tc.want.name || got.home != tc.want.home || !slices.Equal(got.groups, tc.want.groups) {
			t.Errorf("%q: got %+v, want %+v", tc.spec, got, tc.want)
		}
	}
	for _, bad := range []string{"nosuchuser", "alice:nosuchgroup", ":0", "0:", "4294967295", "-1", "1:2:3", "a\x00b"} {
		_, err := db.resolve(bad, 0)
		var e *v1.Error
		if !errors.As(err, &e) || e.Code != v1.CodeInvalidArgument {
			t.Errorf("%q: err %v, want invalid_argument", bad, err)
		}
	}
	// With no files at all, root still has a home.
	if id, err := (userDB{}).resolve("", 0); err != nil || id.home != "/root" {
		t.Errorf("empty db: %+v %v", id, err)
	}
}

// FuzzParseUser feeds arbitrary passwd/group contents and user specs: the
// parsers and the resolver must never panic, and whatever they accept must
// be a valid identity.
func FuzzParseUser(f *testing.F) {
	f.Add([]byte(testPasswd), []byte(testGroup), "alice")
	f.Add([]byte(testPasswd), []byte(testGroup), "1000:users")
	f.Add([]byte("x:x:1:1::/:\n"), []byte("g:x:1:x,,y\n"), "x:g")
	f.Add([]byte("::::::\n:x:0:0\n"), []byte(":::\n"), "0:0")
	f.Add([]byte{}, []byte{}, "")
	f.Add([]byte("a:x:99999999999:1::/:\n"), []byte("\x00"), "a:")
	f.Fuzz(func(t *testing.T, passwd, group []byte, spec string) {
		db := userDB{passwd: parsePasswd(passwd), group: parseGroup(group)}
		for _, e := range db.passwd {
			if e.name == "" || e.uid < 0 || e.gid < 0 || e.uid > 1<<32-2 {
				t.Fatalf("bad passwd entry %+v", e)
			}
		}
		id, err := db.resolve(spec, 0)
		if err != nil {
			var e *v1.Error
			if !errors.As(err, &e) || e.Code != v1.CodeInvalidArgument {
				t.Fatalf("error %v is not invalid_argument", err)
			}
			return
		}
		if id.uid < 0 || id.gid < 0 || id.uid > 1<<32-2 || id.gid > 1<<32-2 {
			t.Fatalf("%q resolved to out-of-range ids %+v", spec, id)
		}
		if len(id.groups) > 0 && id.groups[0] != id.gid {
			t.Fatalf("%q: primary gid %d not first in %v", spec, id.gid, id.groups)
		}
		if strings.ContainsAny(id.name, ":\n") || bytes.ContainsAny([]byte(id.home), "\n") {
			t.Fatalf("%q: field with separator: %+v", spec, id)
		}
	})
}
