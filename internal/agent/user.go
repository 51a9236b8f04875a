package agent

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// The agent reads the sandbox's own /etc/passwd and /etc/group: there is no
// cgo (and no NSS) in a static binary, and the host's user database is not
// the sandbox's.

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name string
	uid  int
	gid  int
	home string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     int
	members []string
}

// maxDBSize bounds how much of /etc/passwd or /etc/group is read.
const maxDBSize = 4 << 20

// parsePasswd parses passwd(5) lines, skipping malformed ones.
func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	forEachLine(data, func(line string) {
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] == "" {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	})
	return out
}

// parseGroup parses group(5) lines, skipping malformed ones.
func parseGroup(data []byte) []groupEntry {
	var out []groupEntry
	forEachLine(data, func(line string) {
		f := strings.Split(line, ":")
		if len(f) < 4 || f[0] == "" {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{name: f[0], gid: gid, members: members})
	})
	return out
}

func forEachLine(data []byte, fn func(string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fn(line)
	}
}

// parseID parses a uid or gid: a decimal in [0, 2^32-2] (2^32-1 is the
// kernel's "no id").
func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, v1.Errorf(v1.CodeInvalidArgument, "invalid id %q", s)
	}
	return int(n), nil
}

// identity is who a process runs as, resolved against the sandbox's files.
type identity struct {
	uid, gid int
	groups   []int  // supplementary groups; only set for a named user
	name     string // "" when the uid has no passwd entry
	home     string
}

// userDB is the sandbox's user database, read once per request.
type userDB struct {
	passwd []passwdEntry
	group  []groupEntry
}

func readUserDB(etcDir string) userDB {
	return userDB{
		passwd: parsePasswd(readSmall(filepath.Join(etcDir, "passwd"))),
		group:  parseGroup(readSmall(filepath.Join(etcDir, "group"))),
	}
}

// readSmall reads a file up to maxDBSize; a missing file reads as empty,
// since minimal images often have no /etc/group.
func readSmall(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxDBSize))
	return b
}

func (db userDB) byName(name string) (passwdEntry, bool) {
	for _, e := range db.passwd {
		if e.name == name {
			return e, true
		}
	}
	return passwdEntry{}, false
}

func (db userDB) byUID(uid int) (passwdEntry, bool) {
	for _, e := range db.passwd {
		if e.uid == uid {
			return e, true
		}
	}
	return passwdEntry{}, false
}

func (db userDB) groupID(s string) (int, error) {
	if id, err := parseID(s); err == nil {
		return id, nil
	}
	for _, g := range db.group {
		if g.name == s {
			return g.gid, nil
		}
	}
	return 0, v1.Errorf(v1.CodeInvalidArgument, "unknown group %q in the sandbox", s)
}

// resolve turns ExecSpec.User into an identity. spec is "" (defaultUID, the
// agent's own uid: root in a sandbox), "name", "uid", "name:group" or
// "uid:gid" (group by name or number). A numeric uid without a passwd entry
// gets gid = uid, never 0, so an unknown uid does not land in the root group.
// Supplementary groups come from /etc/group only when the user is named.
func (db userDB) resolve(spec string, defaultUID int) (identity, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if hasGroup && groupPart == "" || strings.ContainsAny(spec, "\x00\n") {
		return identity{}, v1.Errorf(v1.CodeInvalidArgument, "invalid user %q", spec)
	}
	var id identity
	named := false
	switch {
	case userPart == "":
		if hasGroup {
			return identity{}, v1.Errorf(v1.CodeInvalidArgument, "invalid user %q", spec)
		}
		id.uid, id.gid = defaultUID, defaultUID
		if e, ok := db.byUID(defaultUID); ok {
			id.gid, id.name, id.home = e.gid, e.name, e.home
		}
	case isDigits(userPart):
		uid, err := parseID(userPart)
		if err != nil {
			return identity{}, err
		}
		id.uid, id.gid = uid, uid
		if e, ok := db.byUID(uid); ok {
			id.gid, id.name, id.home = e.gid, e.name, e.home
		}
	default:
		e, ok := db.byName(userPart)
		if !ok {
			return identity{}, v1.Errorf(v1.CodeInvalidArgument, "unknown user %q in the sandbox", userPart)
		}
		id.uid, id.gid, id.name, id.home = e.uid, e.gid, e.name, e.home
		named = true
	}
	if hasGroup {
		gid, err := db.groupID(groupPart)
		if err != nil {
			return identity{}, err
		}
		id.gid = gid
	}
	if named {
		id.groups = db.groupsOf(id.name, id.gid)
	}
	if id.home == "" && id.uid == 0 {
		id.home = "/root"
	}
	return id, nil
}

// groupsOf lists the gids whose member list names user, plus the primary gid.
func (db userDB) groupsOf(user string, primary int) []int {
	groups := []int{primary}
	for _, g := range db.group {
		for _, m := range g.members {
			if m == user && !containsInt(groups, g.gid) {
				groups = append(groups, g.gid)
			}
		}
	}
	return groups
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
