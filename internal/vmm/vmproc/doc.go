// Package vmproc is the VMM process: started detached, found again from
// any process, watched through a pidfd. The VMM drivers (qemu,
// firecracker) share it; each describes its VMM with a VMM value and
// keeps to itself how the VMM is configured and controlled.
//
// A VMM runs in a session of its own, so the VM outlives the command that
// started it, with its output in a log in the VM's directory. Its pid goes
// to a pid file there, which any later process reads to find it again;
// since pids are reused, the process's command line must also name the
// directory. Every handle watches the process through a non-blocking
// pidfd (or, for the starter, through Wait), so a VMM killed from outside
// is noticed by all of them.
//
// Host side; Linux only. Imports no driver and no backend.
package vmproc
