package sandbox

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// PortMapping publishes a sandbox port on the host.
type PortMapping struct {
	HostPort      uint16 `json:"host_port"` // 0: pick a free port
	ContainerPort uint16 `json:"container_port"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}

// ParsePort parses "8080:80", "5353:53/udp" or "3000" (the sandbox's
// port 3000 on a free host port: HostPort 0).
func ParsePort(s string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, fmt.Errorf("port mapping %q: %s (want HOST:CONTAINER[/tcp|/udp] or PORT): %w",
			s, why, errdefs.ErrInvalidArgument)
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return bad("protocol must be tcp or udp")
	}
	parse := func(p string) (uint16, bool) {
		n, err := strconv.ParseUint(p, 10, 16)
		return uint16(n), err == nil && n > 0
	}
	hostStr, ctrStr, both := strings.Cut(spec, ":")
	if !both {
		ctrStr = hostStr
	}
	hp, ok1 := parse(hostStr)
	cp, ok2 := parse(ctrStr)
	if !ok1 || !ok2 {
		return bad("ports must be numbers from 1 to 65535")
	}
	if !both {
		hp = 0
	}
	return PortMapping{HostPort: hp, ContainerPort: cp, Protocol: proto}, nil
}

// String formats the mapping the way ParsePort reads it.
func (p PortMapping) String() string {
	s := fmt.Sprintf("%d:%d", p.HostPort, p.ContainerPort)
	if p.HostPort == 0 {
		s = fmt.Sprint(p.ContainerPort)
	}
	if p.Protocol == "udp" {
		s += "/udp"
	}
	return s
}
