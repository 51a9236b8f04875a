//go:build linux

package firecracker

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The fake Firecracker: this test binary, run with fakeEnv=1, serves
// Firecracker's API (swagger: src/firecracker/swagger/firecracker.yaml)
// as strictly as the spec reads, and more strictly where the driver
// should not rely on leniency:
//
//   - every body is decoded against a mirror of its definition: exact
//     key names (Go's decoder alone would match them case-insensitively),
//     no unknown keys, the right JSON types, required keys present;
//   - fields the driver never sends are not mirrored, so sending one is
//     an unknown field; deprecated fields (vsock_id, mem_file_path,
//     enable_diff_snapshots) are refused;
//   - values: enums, vcpu_count 1..32, guest_cid >= 3, ids as Firecracker
//     checks them and equal in path and body, absolute paths to files that
//     exist (the fake's working directory is not the caller's), one root
//     drive at most, TAP names as the kernel allows them, MACs;
//   - state: configuration before InstanceStart only, InstanceStart once
//     the boot source and machine config are set and the kernel is an ELF
//     or bzImage, PATCH /vm once started, snapshots only of a paused VM,
//     snapshot loads only as the first request of a fresh process.
//
// It answers 204, 200 with JSON, or 400 with {"fault_message": ...}, and
// records every request, one JSON line each, in fakeRecord in the VM's
// directory (truncated at start: the record is this process's).
//
// The definitions' mirrors and the strict decoding are in
// fakeschema_test.go, the vsock side in fakevsock_test.go.
//
// With a vsock device it serves the hybrid vsock socket while the VM
// runs: "CONNECT 1024" is answered "OK 1073741824" and a greeting, then
// echoes; port 8 gets no answer (a guest that never accepts); port 9 gets
// garbage; any other port is closed, as Firecracker does when nothing
// listens in the guest.
const (
	fakeEnv    = "FAKE_FIRECRACKER"
	fakeRecord = "fake-requests.jsonl"
	// fakeGreeting follows the OK line on the echo port, in the same
	// write: DialAgent must leave it to the caller.
	fakeGreeting = "hello from the guest\n"
	echoPort     = 1024
)

// recorded is one line of fakeRecord.
type recorded struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

func fakeFirecracker(args []string) int {
	var sock string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--api-sock" && i+1 < len(args):
			sock = args[i+1]
			i++
		default:
			fmt.Fprintf(os.Stderr, "Arguments parsing error: Found argument '%s' which wasn't expected.\n", args[i])
			return 1
		}
	}
	if sock == "" {
		fmt.Fprintln(os.Stderr, "fake firecracker: --api-sock is required (the real default, /run/firecracker.socket, is not for tests)")
		return 1
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to open the API socket at %s: %v\n", sock, err)
		return 1
	}
	dir := filepath.Dir(sock)
	rec, err := os.OpenFile(filepath.Join(dir, fakeRecord), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A fake whose test binary died must not outlive it: it would be
	// reparented, and exits then.
	go func(ppid int) {
		for os.Getppid() == ppid {
			time.Sleep(50 * time.Millisecond)
		}
		os.Exit(2)
	}(os.Getppid())
	fmt.Println("Running Firecracker v1.16.1 (fake)")
	f := &fake{rec: rec, state: StateNotStarted, drives: map[string]fDrive{}, nets: map[string]fNet{}}
	http.Serve(l, f)
	return 1
}

type fake struct {
	mu    sync.Mutex
	rec   *os.File
	state string
	// touched: a resource was configured, so a snapshot can no longer
	// be loaded.
	touched bool
	machine *fMachineConfig
	boot    *fBootSource
	drives  map[string]fDrive
	order   []string // drive ids, as configured
	nets    map[string]fNet
	vsock   *fVsock
	vsockLn net.Listener
}

// faultError is a 400 with its fault message.
type faultError string

func (e faultError) Error() string { return string(e) }

func faultf(format string, a ...any) error { return faultError(fmt.Sprintf(format, a...)) }

const (
	notAfterStart  = "The requested operation is not supported after starting the microVM."
	notBeforeStart = "The requested operation is not supported before starting the microVM."
	// maxPayload is Firecracker's default --http-api-max-payload-size.
	maxPayload = 51200
)

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	out, err := f.serve(r, body)
	status := http.StatusNoContent
	switch {
	case err != nil:
		status = http.StatusBadRequest
	case out != nil:
		status = http.StatusOK
	}
	line, _ := json.Marshal(recorded{Method: r.Method, Path: r.URL.Path, Status: status, Body: validJSON(body)})
	f.rec.Write(append(line, '\n'))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	switch {
	case err != nil:
		json.NewEncoder(w).Encode(map[string]string{"fault_message": err.Error()})
	case out != nil:
		json.NewEncoder(w).Encode(out)
	}
}

// validJSON is body for the record, if it is JSON at all.
func validJSON(body []byte) json.RawMessage {
	if len(body) == 0 || !json.Valid(body) {
		return nil
	}
	return body
}

func (f *fake) serve(r *http.Request, body []byte) (any, error) {
	switch {
	case len(r.TransferEncoding) > 0:
		return nil, faultf("fake: chunked bodies are not taken; send Content-Length")
	case len(body) > maxPayload:
		return nil, faultf("Request payload with size %d is larger than the limit of %d allowed by server.", len(body), maxPayload)
	case r.Method == http.MethodGet && len(body) > 0:
		return nil, faultf("GET request cannot have a body.")
	case r.Method != http.MethodGet && len(body) == 0:
		return nil, faultf("Empty %s request.", r.Method)
	}
	route, id, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet && route != "snapshot" {
		// Whatever its outcome, a configuration request ends the
		// process's freshness.
		defer func() { f.touched = true }()
	}
	switch r.Method + " " + route {
	case "GET ":
		return InstanceInfo{AppName: "Firecracker", ID: "anonymous-instance", State: f.state, VMMVersion: "1.16.1"}, nil
	case "PUT machine-config":
		return nil, f.putMachineConfig(body)
	case "PUT boot-source":
		return nil, f.putBootSource(body)
	case "PUT drives":
		return nil, f.putDrive(id, body)
	case "PUT network-interfaces":
		return nil, f.putNet(id, body)
	case "PUT vsock":
		return nil, f.putVsock(body)
	case "PUT actions":
		return nil, f.putAction(body)
	case "PATCH vm":
		return nil, f.patchVM(body)
	case "PUT snapshot":
		switch id {
		case "create":
			return nil, f.createSnapshot(body)
		case "load":
			err := f.loadSnapshot(body)
			f.touched = true
			return nil, err
		}
	}
	return nil, faultf("Invalid request method and/or path: %s %s.", r.Method, r.URL.Path)
}

func (f *fake) putMachineConfig(body []byte) error {
	var m fMachineConfig
	if err := strict(body, &m); err != nil {
		return err
	}
	if f.state != StateNotStarted {
		return faultf(notAfterStart)
	}
	if m.VCPUCount == nil || m.MemSizeMiB == nil {
		return faultf("An error occurred when deserializing the json body of a request: missing field `vcpu_count` or `mem_size_mib`.")
	}
	if n := *m.VCPUCount; n < 1 || n > 32 {
		return faultf("The vCPU number %d is invalid: 1 to 32.", n)
	}
	if m.SMT != nil && *m.SMT && *m.VCPUCount > 1 && *m.VCPUCount%2 != 0 {
		return faultf("The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.")
	}
	if *m.MemSizeMiB <= 0 {
		return faultf("The memory size (MiB) is invalid.")
	}
	if err := oneOf("cpu_template", m.CPUTemplate, "C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"); err != nil {
		return err
	}
	if err := oneOf("huge_pages", m.HugePages, "None", "Transparent", "2M"); err != nil {
		return err
	}
	f.machine = &m
	return nil
}

func (f *fake) putBootSource(body []byte) error {
	var b fBootSource
	if err := strict(body, &b); err != nil {
		return err
	}
	if f.state != StateNotStarted {
		return faultf(notAfterStart)
	}
	if b.KernelImagePath == nil {
		return faultf("An error occurred when deserializing the json body of a request: missing field `kernel_image_path`.")
	}
	if err := hostFile("kernel", *b.KernelImagePath); err != nil {
		return err
	}
	if b.InitrdPath != nil {
		if err := hostFile("initrd", *b.InitrdPath); err != nil {
			return err
		}
	}
	// x86's command line limit, which Firecracker's own additions (the
	// virtio-mmio devices) share.
	if b.BootArgs != nil && len(*b.BootArgs) >= 2048 {
		return faultf("The kernel command line is invalid: too long")
	}
	f.boot = &b
	return nil
}

func (f *fake) putDrive(id string, body []byte) error {
	var d fDrive
	if err := strict(body, &d); err != nil {
		return err
	}
	if err := checkedID(id); err != nil {
		return err
	}
	if f.state != StateNotStarted {
		return faultf(notAfterStart)
	}
	switch {
	case d.DriveID == nil || d.IsRootDevice == nil:
		return faultf("An error occurred when deserializing the json body of a request: missing field `drive_id` or `is_root_device`.")
	case *d.DriveID != id:
		return faultf("The id from the path does not match the id from the body!")
	case d.PathOnHost == nil || d.IsReadOnly == nil:
		return faultf("fake: a virtio-block drive needs path_on_host and is_read_only")
	}
	if err := hostFile("drive", *d.PathOnHost); err != nil {
		return err
	}
	if err := oneOf("cache_type", d.CacheType, "Unsafe", "Writeback"); err != nil {
		return err
	}
	if err := oneOf("io_engine", d.IOEngine, "Sync", "Async"); err != nil {
		return err
	}
	if *d.IsRootDevice {
		for other, o := range f.drives {
			if other != id && *o.IsRootDevice {
				return faultf("A root block device already exists!")
			}
		}
	}
	if _, ok := f.drives[id]; !ok {
		f.order = append(f.order, id)
	}
	f.drives[id] = d
	return nil
}

var macRe = regexp.MustCompile(`^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$`)

func (f *fake) putNet(id string, body []byte) error {
	var n fNet
	if err := strict(body, &n); err != nil {
		return err
	}
	if err := checkedID(id); err != nil {
		return err
	}
	if f.state != StateNotStarted {
		return faultf(notAfterStart)
	}
	switch {
	case n.IfaceID == nil || n.HostDevName == nil:
		return faultf("An error occurred when deserializing the json body of a request: missing field `iface_id` or `host_dev_name`.")
	case *n.IfaceID != id:
		return faultf("The id from the path does not match the id from the body!")
	case *n.HostDevName == "" || len(*n.HostDevName) > 15 || strings.ContainsAny(*n.HostDevName, "/ "):
		return faultf("Could not create the network device: Open tap device failed: invalid name %q", *n.HostDevName)
	case n.GuestMAC != nil && !macRe.MatchString(*n.GuestMAC):
		return faultf("An error occurred when deserializing the json body of a request: invalid MAC address %q.", *n.GuestMAC)
	case n.MTU != nil && (*n.MTU < 68 || *n.MTU > 65535):
		return faultf("invalid MTU %d", *n.MTU)
	}
	// The real one opens the TAP here; the fake cannot assume one exists.
	for other, o := range f.nets {
		if other != id && *o.HostDevName == *n.HostDevName {
			return faultf("The host device name %s is already in use.", *n.HostDevName)
		}
	}
	f.nets[id] = n
	return nil
}

func (f *fake) putVsock(body []byte) error {
	var v fVsock
	if err := strict(body, &v); err != nil {
		return err
	}
	if f.state != StateNotStarted {
		return faultf(notAfterStart)
	}
	switch {
	case v.VsockID != nil:
		return faultf("fake: vsock_id is deprecated")
	case v.GuestCID == nil || v.UDSPath == nil:
		return faultf("An error occurred when deserializing the json body of a request: missing field `guest_cid` or `uds_path`.")
	case *v.GuestCID < 3:
		return faultf("Invalid guest CID %d: must be at least 3", *v.GuestCID)
	case !filepath.IsAbs(*v.UDSPath):
		return faultf("fake: uds_path %q is not absolute", *v.UDSPath)
	}
	// Firecracker binds the socket as the device is created.
	if f.vsockLn != nil {
		f.vsockLn.Close()
		f.vsockLn = nil
	}
	if err := f.listenVsock(*v.UDSPath); err != nil {
		return err
	}
	f.vsock = &v
	return nil
}

func (f *fake) putAction(body []byte) error {
	var a fAction
	if err := strict(body, &a); err != nil {
		return err
	}
	if a.ActionType == nil {
		return faultf("An error occurred when deserializing the json body of a request: missing field `action_type`.")
	}
	switch *a.ActionType {
	case "InstanceStart":
		if f.state != StateNotStarted {
			return faultf(notAfterStart)
		}
		if f.boot == nil {
			return faultf("Cannot start microvm that was already started or is missing its boot source.")
		}
		if f.machine == nil {
			return faultf("fake: machine-config was not set")
		}
		if err := kernelImage(*f.boot.KernelImagePath); err != nil {
			return err
		}
		f.state = StateRunning
	case "SendCtrlAltDel", "FlushMetrics":
		if f.state == StateNotStarted {
			return faultf(notBeforeStart)
		}
	default:
		return faultf("An error occurred when deserializing the json body of a request: unknown variant `%s`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`.", *a.ActionType)
	}
	return nil
}

func (f *fake) patchVM(body []byte) error {
	var v fVM
	if err := strict(body, &v); err != nil {
		return err
	}
	if v.State == nil {
		return faultf("An error occurred when deserializing the json body of a request: missing field `state`.")
	}
	if f.state == StateNotStarted {
		return faultf(notBeforeStart)
	}
	switch *v.State {
	case "Paused":
		f.state = StatePaused
	case "Resumed":
		f.state = StateRunning
	default:
		return faultf("An error occurred when deserializing the json body of a request: unknown variant `%s`, expected `Paused` or `Resumed`.", *v.State)
	}
	return nil
}

func (f *fake) createSnapshot(body []byte) error {
	var s fSnapshotCreate
	if err := strict(body, &s); err != nil {
		return err
	}
	if s.SnapshotPath == nil || s.MemFilePath == nil {
		return faultf("An error occurred when deserializing the json body of a request: missing field `snapshot_path` or `mem_file_path`.")
	}
	if err := oneOf("snapshot_type", s.SnapshotType, "Full", "Diff"); err != nil {
		return err
	}
	if f.state != StatePaused {
		return faultf("Cannot create snapshot: the microVM is not paused (state %s).", f.state)
	}
	if s.SnapshotType != nil && *s.SnapshotType == "Diff" && (f.machine.TrackDirtyPages == nil || !*f.machine.TrackDirtyPages) {
		return faultf("Diff snapshots need track_dirty_pages")
	}
	for _, p := range []string{*s.SnapshotPath, *s.MemFilePath} {
		if !filepath.IsAbs(p) {
			return faultf("fake: snapshot file %q is not absolute", p)
		}
	}
	snap, _ := json.Marshal(fSnapshot{Fake: "v1", Machine: f.machine, Drives: f.drives, Order: f.order, Nets: f.nets, Vsock: f.vsock})
	if err := os.WriteFile(*s.SnapshotPath, snap, 0o600); err != nil {
		return faultf("Cannot create snapshot: %v", err)
	}
	// Guest memory: a sparse file of the machine's size.
	mem, err := os.OpenFile(*s.MemFilePath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err == nil {
		err = mem.Truncate(int64(*f.machine.MemSizeMiB) << 20)
		mem.Close()
	}
	if err != nil {
		return faultf("Cannot create snapshot memory file: %v", err)
	}
	return nil
}

func (f *fake) loadSnapshot(body []byte) error {
	var l fSnapshotLoad
	if err := strict(body, &l); err != nil {
		return err
	}
	if f.touched || f.state != StateNotStarted {
		return faultf("Loading a microVM snapshot not allowed after configuring boot-specific resources.")
	}
	switch {
	case l.SnapshotPath == nil:
		return faultf("An error occurred when deserializing the json body of a request: missing field `snapshot_path`.")
	case l.MemFilePath != nil || l.EnableDiffSnapshots != nil:
		return faultf("fake: mem_file_path and enable_diff_snapshots are deprecated")
	case l.MemBackend == nil:
		return faultf("missing mem_backend")
	case l.MemBackend.BackendType == nil || l.MemBackend.BackendPath == nil:
		return faultf("An error occurred when deserializing the json body of a request: missing field `backend_type` or `backend_path`.")
	}
	if err := oneOf("backend_type", l.MemBackend.BackendType, "File", "Uffd"); err != nil {
		return err
	}
	if *l.MemBackend.BackendType != "File" {
		return faultf("fake: only File memory backends")
	}
	if err := oneOf("huge_pages", l.HugePages, "Snapshot", "None", "Transparent", "2M"); err != nil {
		return err
	}
	for _, o := range l.NetworkOverrides {
		if o.IfaceID == nil || o.HostDevName == nil {
			return faultf("network_overrides: missing field `iface_id` or `host_dev_name`.")
		}
	}
	if o := l.VsockOverride; o != nil && o.UDSPath == nil {
		return faultf("vsock_override: missing field `uds_path`.")
	}
	if err := hostFile("snapshot", *l.SnapshotPath); err != nil {
		return err
	}
	b, _ := os.ReadFile(*l.SnapshotPath)
	var s fSnapshot
	if json.Unmarshal(b, &s) != nil || s.Fake == "" || s.Machine == nil || s.Machine.MemSizeMiB == nil {
		return faultf("Load snapshot error: Failed to restore from snapshot: invalid snapshot file")
	}
	st, err := os.Stat(*l.MemBackend.BackendPath)
	if err != nil {
		return faultf("Load snapshot error: Failed to restore from snapshot: cannot open memory file: %v", err)
	}
	if st.Size() != int64(*s.Machine.MemSizeMiB)<<20 {
		return faultf("Load snapshot error: memory file size %d does not match the snapshot", st.Size())
	}
	for _, id := range s.Order {
		if err := hostFile("drive", *s.Drives[id].PathOnHost); err != nil {
			return err
		}
	}
	if s.Vsock != nil {
		if o := l.VsockOverride; o != nil {
			s.Vsock.UDSPath = o.UDSPath
		}
		if err := f.listenVsock(*s.Vsock.UDSPath); err != nil {
			return err
		}
	}
	f.machine, f.drives, f.order, f.nets, f.vsock = s.Machine, s.Drives, s.Order, s.Nets, s.Vsock
	f.state = StatePaused
	if l.ResumeVM != nil && *l.ResumeVM {
		f.state = StateRunning
	}
	return nil
}
