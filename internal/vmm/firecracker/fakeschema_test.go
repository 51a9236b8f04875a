//go:build linux

package firecracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Mirrors of the spec's definitions: pointers tell a missing key.

type fMachineConfig struct {
	VCPUCount       *int    `json:"vcpu_count"`
	MemSizeMiB      *int    `json:"mem_size_mib"`
	SMT             *bool   `json:"smt"`
	TrackDirtyPages *bool   `json:"track_dirty_pages"`
	CPUTemplate     *string `json:"cpu_template"`
	HugePages       *string `json:"huge_pages"`
}

type fBootSource struct {
	KernelImagePath *string `json:"kernel_image_path"`
	InitrdPath      *string `json:"initrd_path"`
	BootArgs        *string `json:"boot_args"`
}

type fDrive struct {
	DriveID      *string `json:"drive_id"`
	PathOnHost   *string `json:"path_on_host"`
	IsRootDevice *bool   `json:"is_root_device"`
	IsReadOnly   *bool   `json:"is_read_only"`
	PartUUID     *string `json:"partuuid"`
	CacheType    *string `json:"cache_type"`
	IOEngine     *string `json:"io_engine"`
}

type fNet struct {
	IfaceID     *string `json:"iface_id"`
	HostDevName *string `json:"host_dev_name"`
	GuestMAC    *string `json:"guest_mac"`
	MTU         *int    `json:"mtu"`
}

type fVsock struct {
	GuestCID *uint32 `json:"guest_cid"`
	UDSPath  *string `json:"uds_path"`
	VsockID  *string `json:"vsock_id"`
}

type fAction struct {
	ActionType *string `json:"action_type"`
}

type fVM struct {
	State *string `json:"state"`
}

type fSnapshotCreate struct {
	SnapshotPath *string `json:"snapshot_path"`
	MemFilePath  *string `json:"mem_file_path"`
	SnapshotType *string `json:"snapshot_type"`
}

type fMemBackend struct {
	BackendType *string `json:"backend_type"`
	BackendPath *string `json:"backend_path"`
}

type fNetOverride struct {
	IfaceID     *string `json:"iface_id"`
	HostDevName *string `json:"host_dev_name"`
}

type fVsockOverride struct {
	UDSPath *string `json:"uds_path"`
}

type fSnapshotLoad struct {
	SnapshotPath        *string         `json:"snapshot_path"`
	MemFilePath         *string         `json:"mem_file_path"`
	MemBackend          *fMemBackend    `json:"mem_backend"`
	EnableDiffSnapshots *bool           `json:"enable_diff_snapshots"`
	TrackDirtyPages     *bool           `json:"track_dirty_pages"`
	ResumeVM            *bool           `json:"resume_vm"`
	NetworkOverrides    []fNetOverride  `json:"network_overrides"`
	VsockOverride       *fVsockOverride `json:"vsock_override"`
	ClockRealtime       *bool           `json:"clock_realtime"`
	HugePages           *string         `json:"huge_pages"`
}

// fSnapshot is the fake's snapshot file: what a load brings back.
type fSnapshot struct {
	Fake    string            `json:"fake_firecracker_snapshot"`
	Machine *fMachineConfig   `json:"machine"`
	Drives  map[string]fDrive `json:"drives"`
	Order   []string          `json:"order"`
	Nets    map[string]fNet   `json:"nets"`
	Vsock   *fVsock           `json:"vsock"`
}

// strict decodes body into v as serde with deny_unknown_fields would:
// exact key names, known keys only, right types, one value.
func strict(body []byte, v any) error {
	fail := func(err error) error {
		return faultf("An error occurred when deserializing the json body of a request: %v.", err)
	}
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return fail(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(fmt.Errorf("trailing characters"))
	}
	return nil
}

// checkKeys checks that every key of the object raw is a json tag of t,
// exactly, down through nested objects and arrays.
func checkKeys(raw json.RawMessage, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("invalid type: %s, expected struct %s", bytes.TrimSpace(raw), t.Name())
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			fields[name] = t.Field(i).Type
		}
		for k, v := range m {
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("unknown field `%s`", k)
			}
			if err := checkKeys(v, ft); err != nil {
				return err
			}
		}
	case reflect.Slice:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("invalid type: %s, expected a sequence", bytes.TrimSpace(raw))
		}
		for _, it := range items {
			if err := checkKeys(it, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

func oneOf(field string, v *string, allowed ...string) error {
	if v == nil {
		return nil
	}
	for _, a := range allowed {
		if *v == a {
			return nil
		}
	}
	return faultf("An error occurred when deserializing the json body of a request: unknown variant `%s` for %s, expected one of %s.", *v, field, strings.Join(allowed, ", "))
}

// checkedID is Firecracker's rule for ids in a path.
func checkedID(id string) error {
	if id == "" {
		return faultf("The ID cannot be empty.")
	}
	if !validID(id) {
		return faultf("API Resource IDs can only contain alphanumeric characters and underscores.")
	}
	return nil
}

// hostFile checks a path Firecracker is to open. It runs in the VM's
// directory, so a relative path would be a driver bug.
func hostFile(what, p string) error {
	if !filepath.IsAbs(p) {
		return faultf("fake: %s path %q is not absolute", what, p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return faultf("The %s file cannot be opened: %v", what, err)
	}
	if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
		return faultf("The %s file %s is not a file", what, p)
	}
	return nil
}

// kernelImage checks what InstanceStart loads: an ELF vmlinux, or a
// bzImage (its setup header's "HdrS" at 0x202).
func kernelImage(p string) error {
	b := make([]byte, 0x206)
	fd, err := os.Open(p)
	if err != nil {
		return faultf("Cannot load kernel: %v", err)
	}
	defer fd.Close()
	n, _ := io.ReadFull(fd, b)
	if n >= 4 && string(b[:4]) == "\x7fELF" || n == len(b) && string(b[0x202:0x206]) == "HdrS" {
		return nil
	}
	return faultf("Cannot load kernel due to invalid memory configuration or invalid kernel image: Kernel Loader: failed to load ELF kernel image")
}

// The fake is only worth what it refuses: each of these is against the
// spec or against Firecracker's state rules.
func TestFakeIsStrict(t *testing.T) {
	cfg := fakeConfig(t)
	vm, err := launch(t.Context(), cfg.Binary, cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		vm.Kill()
		vm.Close()
	}()
	disk := filepath.Join(filepath.Dir(cfg.Kernel), "vmlinux")
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/machine-config", `{"vcpu_count": "2", "mem_size_mib": 128}`},
		{"PUT", "/machine-config", `{"VCPU_COUNT": 2, "mem_size_mib": 128}`},
		{"PUT", "/machine-config", `{"vcpu_count": 2}`},
		{"PUT", "/machine-config", `{"vcpu_count": 33, "mem_size_mib": 128}`},
		{"PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 128, "cpus": 2}`},
		{"PUT", "/machine-config", `[2, 128]`},
		{"PUT", "/machine-config", `{"vcpu_count": 2.5, "mem_size_mib": 128}`},
		{"PUT", "/boot-source", `{"kernel_image_path": "vmlinux"}`},
		{"PUT", "/boot-source", `{"initrd_path": "` + disk + `"}`},
		{"PUT", "/drives/a-b", `{"drive_id": "a-b", "path_on_host": "` + disk + `", "is_root_device": false, "is_read_only": true}`},
		{"PUT", "/drives/a", `{"drive_id": "b", "path_on_host": "` + disk + `", "is_root_device": false, "is_read_only": true}`},
		{"PUT", "/drives/a", `{"drive_id": "a", "path_on_host": "` + disk + `", "is_read_only": true}`},
		{"PUT", "/network-interfaces/net0", `{"iface_id": "net0", "host_dev_name": "a-tap-name-too-long"}`},
		{"PUT", "/network-interfaces/net0", `{"iface_id": "net0", "host_dev_name": "tap0", "guest_mac": "06:00"}`},
		{"PUT", "/vsock", `{"guest_cid": 3, "uds_path": "/tmp/v.sock", "vsock_id": "vsock0"}`},
		{"PUT", "/vsock", `{"guest_cid": 2, "uds_path": "/tmp/v.sock"}`},
		{"PUT", "/vsock", `{"guest_cid": -3, "uds_path": "/tmp/v.sock"}`},
		{"PUT", "/actions", `{"action_type": "Start"}`},
		{"PUT", "/actions", `{"action_type": "InstanceStart"}`}, // no boot source yet
		{"PATCH", "/vm", `{"state": "Paused"}`},                 // not started
		{"PUT", "/snapshot/create", `{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}`},
		{"PUT", "/machine-config", ``},
		{"PUT", "/no-such-thing", `{}`},
		{"PUT", "/snapshot/load", `{"snapshot_path": "/tmp/s", "mem_backend": {"backend_type": "File", "backend_path": "/tmp/m"}}`}, // not fresh
	} {
		var body any
		if c.body != "" {
			body = json.RawMessage(c.body)
		}
		err := vm.call(t.Context(), c.method, c.path, body, nil)
		if apiErr := new(APIError); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Fault == "" {
			t.Errorf("%s %s %s: %v, want a 400 with a fault message", c.method, c.path, c.body, err)
		}
	}
	// And what the spec allows passes.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 128, "smt": false, "huge_pages": "None"}`},
		{"PUT", "/boot-source", `{"kernel_image_path": "` + cfg.Kernel + `"}`},
		{"PUT", "/drives/a", `{"drive_id": "a", "path_on_host": "` + disk + `", "is_root_device": true, "is_read_only": true, "cache_type": "Writeback"}`},
		{"PUT", "/actions", `{"action_type": "InstanceStart"}`},
		{"PATCH", "/vm", `{"state": "Paused"}`},
	} {
		if err := vm.call(t.Context(), c.method, c.path, json.RawMessage(c.body), nil); err != nil {
			t.Errorf("%s %s %s: %v", c.method, c.path, c.body, err)
		}
	}
}
