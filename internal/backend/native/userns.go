//go:build linux

package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Host id ranges for sandboxes when running as root: slot s maps sandbox
// ids 0..65535 to idBase + s*idsPerSandbox onwards. 2^28 is far above the
// ranges distributions hand out in /etc/subuid.
const (
	idBase        = 1 << 28
	idsPerSandbox = 1 << 16
	maxSlots      = (1<<32-idBase)/idsPerSandbox - 1 // stay clear of uid 2^32-1 (invalid)
)

// idMap is how a sandbox's ids map to the host: sandbox id i is host id
// UID+i (GID+i), for i < Size.
type idMap struct {
	UID, GID, Size int
	Slot           int // -1 when rootless
}

func (m idMap) rootless() bool { return m.Slot < 0 }

func slotIDs(slot int) idMap {
	base := idBase + slot*idsPerSandbox
	return idMap{UID: base, GID: base, Size: idsPerSandbox, Slot: slot}
}

// rootlessIDs maps sandbox root to the caller's own ids.
func rootlessIDs() idMap {
	return idMap{UID: os.Geteuid(), GID: os.Getegid(), Size: 1, Slot: -1}
}

// slots allocates id ranges: one file per taken slot in dir, created under
// an exclusive flock of dir+".lock", so concurrent Starts in any number of
// processes never share a range. A slot whose owner's directory is gone
// (a sandbox deleted without Remove) is reclaimed.
type slots struct {
	dir string
}

// slotOwner is the content of a slot file.
type slotOwner struct {
	ID  string `json:"id"`
	Dir string `json:"dir"`
}

func (s slots) locked(fn func() error) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("uid slots: %w", err)
	}
	f, err := os.OpenFile(s.dir+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("uid slots: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("uid slots: locking: %w", err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

func (s slots) path(slot int) string { return filepath.Join(s.dir, strconv.Itoa(slot)) }

func (s slots) read(slot int) (slotOwner, error) {
	var o slotOwner
	b, err := os.ReadFile(s.path(slot))
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(b, &o)
}

func (s slots) write(slot int, o slotOwner) error {
	b, _ := json.Marshal(o)
	f, err := os.OpenFile(s.path(slot), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.path(slot))
	}
	return err
}

// acquire returns the slot owner holds: want if it is free or already
// owner's, otherwise the lowest free one. fresh reports a newly taken slot.
func (s slots) acquire(owner slotOwner, want int) (slot int, fresh bool, err error) {
	err = s.locked(func() error {
		if want >= 0 {
			o, err := s.read(want)
			switch {
			case err == nil && o.ID == owner.ID:
				slot = want
				return nil
			case errors.Is(err, fs.ErrNotExist):
				if err := s.write(want, owner); err != nil {
					return err
				}
				slot, fresh = want, true
				return nil
			}
		}
		used := map[int]bool{}
		ents, err := os.ReadDir(s.dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			n, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if o, err := s.read(n); err == nil && o.Dir != "" {
				if _, err := os.Stat(o.Dir); errors.Is(err, fs.ErrNotExist) {
					os.Remove(s.path(n)) // its sandbox is gone
					continue
				}
			}
			used[n] = true
		}
		for n := 0; n < maxSlots; n++ {
			if !used[n] {
				if err := s.write(n, owner); err != nil {
					return err
				}
				slot, fresh = n, true
				return nil
			}
		}
		return fmt.Errorf("all %d uid ranges are in use: %w", maxSlots, errdefs.ErrUnavailable)
	})
	if err != nil {
		return -1, false, fmt.Errorf("allocating a uid range: %w", err)
	}
	return slot, fresh, nil
}

// release frees slot if owner holds it.
func (s slots) release(slot int, ownerID string) error {
	return s.locked(func() error {
		o, err := s.read(slot)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && o.ID != ownerID {
			return nil // not ours (any more)
		}
		if err := os.Remove(s.path(slot)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// sandboxState is what the backend remembers in spec.Dir across starts:
// the uid range the overlay upper directory's files are owned by.
type sandboxState struct {
	Slot int `json:"slot"`
}

func readState(dir string) (sandboxState, bool) {
	var st sandboxState
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

func writeState(dir string, st sandboxState) error {
	b, _ := json.Marshal(st)
	tmp := filepath.Join(dir, "."+stateName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateName))
}

// shiftOwnership re-owns every file under dir from one id range to another
// (a sandbox whose range was lost and re-allocated elsewhere). Ids outside
// the old range are left alone.
func shiftOwnership(dir string, from, to idMap) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		uid, gid := int(st.Uid), int(st.Gid)
		if uid >= from.UID && uid < from.UID+from.Size {
			uid = to.UID + uid - from.UID
		}
		if gid >= from.GID && gid < from.GID+from.Size {
			gid = to.GID + gid - from.GID
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		// chown clears set-id bits; put them back.
		if info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 && info.Mode()&fs.ModeSymlink == 0 {
			return os.Chmod(p, info.Mode())
		}
		return nil
	})
}

// acquireIDs returns the sandbox's id range: as root the slot it used
// before (its overlay files are owned by it) or a new one; as an ordinary
// user the user's own ids.
func (b *Backend) acquireIDs(spec *sandbox.Spec, undo *cleanups) (idMap, error) {
	if os.Geteuid() != 0 {
		return rootlessIDs(), nil
	}
	s := slots{dir: filepath.Join(b.dataRoot(spec), "native", "uids")}
	prev, had := readState(spec.Dir)
	want := -1
	if had {
		want = prev.Slot
	}
	slot, fresh, err := s.acquire(slotOwner{ID: spec.ID, Dir: spec.Dir}, want)
	if err != nil {
		return idMap{}, err
	}
	if fresh {
		undo.add(func() { s.release(slot, spec.ID) })
	}
	ids := slotIDs(slot)
	if had && slot != prev.Slot {
		// The old range went to another sandbox: move the files over.
		upper := filepath.Join(spec.Dir, overlayName)
		if err := shiftOwnership(upper, slotIDs(prev.Slot), ids); err != nil && !errors.Is(err, os.ErrNotExist) {
			return idMap{}, fmt.Errorf("re-owning the sandbox's files: %w", err)
		}
	}
	if !had || slot != prev.Slot {
		if err := writeState(spec.Dir, sandboxState{Slot: slot}); err != nil {
			return idMap{}, err
		}
		if !had {
			undo.add(func() { os.Remove(filepath.Join(spec.Dir, stateName)) })
		}
	}
	return ids, nil
}
