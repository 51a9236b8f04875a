package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Remove deletes the image record ref names (or, given an ID, every name
// of that image). Its layers stay until Prune, which keeps those any
// sandbox still uses.
func (s *Store) Remove(ref string) ([]*Image, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	victims := []*Image{img}
	if isID(ref) {
		all, err := s.List()
		if err != nil {
			return nil, err
		}
		victims = victims[:0]
		for _, i := range all {
			if i.ID == img.ID {
				victims = append(victims, i)
			}
		}
	}
	for _, v := range victims {
		if err := os.Remove(s.refPath(v.Name)); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("removing image %s: %w", v.Name, err)
		}
	}
	return victims, nil
}

// PruneReport says what Prune removed.
type PruneReport struct {
	Layers int   `json:"layers"`
	Blobs  int   `json:"blobs"`
	Bytes  int64 `json:"bytes"`
}

// Prune removes layers and blobs no stored image references and no
// sandbox uses, and work left behind by interrupted pulls. It waits for
// pulls and sandbox creations in progress (Hold) to finish, then asks
// inUse for the layer directories of existing sandboxes.
func (s *Store) Prune(ctx context.Context, inUse func() ([]string, error)) (PruneReport, error) {
	var rep PruneReport
	unlock, err := s.lock(ctx, "store", true)
	if err != nil {
		return rep, err
	}
	defer unlock()
	used, err := inUse()
	if err != nil {
		return rep, err
	}
	imgs, err := s.List()
	if err != nil {
		return rep, err
	}
	keepLayers := map[string]bool{"empty": true}
	keepBlobs := map[string]bool{}
	for _, img := range imgs {
		for _, c := range img.Chain {
			keepLayers[c] = true
		}
		if _, hex, ok := strings.Cut(img.ID, ":"); ok {
			keepBlobs[hex] = true
		}
	}
	for _, dir := range used {
		if rel, err := filepath.Rel(s.dir("layers"), dir); err == nil && filepath.IsLocal(rel) {
			keepLayers[strings.SplitN(rel, string(filepath.Separator), 2)[0]] = true
		}
	}
	ents, _ := os.ReadDir(s.dir("layers"))
	for _, e := range ents {
		if keepLayers[e.Name()] {
			continue
		}
		m, _ := s.Layer(e.Name())
		if err := os.RemoveAll(s.layerDir(e.Name())); err != nil {
			return rep, fmt.Errorf("pruning layer %s: %w", e.Name(), err)
		}
		rep.Layers++
		if m != nil {
			rep.Bytes += m.Size
		}
	}
	blobs, _ := filepath.Glob(s.dir("blobs", "sha256", "*"))
	for _, b := range blobs {
		if keepBlobs[filepath.Base(b)] {
			continue
		}
		if err := os.Remove(b); err == nil {
			rep.Blobs++
		}
	}
	// Nothing in tmp is in use while we hold the store lock exclusively,
	// except another pull's download about to take it: leave young ones.
	tmps, _ := os.ReadDir(s.dir("tmp"))
	for _, t := range tmps {
		if info, err := t.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
			os.RemoveAll(filepath.Join(s.dir("tmp"), t.Name()))
		}
	}
	return rep, nil
}
