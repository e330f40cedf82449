package measure

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Counters through perf_event_open (linux/amd64), the same events as the
// C++ harness. The Go runtime has started its threads before main, so each
// event is opened on every thread in /proc/self/task with inherit=1 and the
// values summed; threads they create later are inherited. Events are not
// grouped. An event no thread could open is "unsupported" with the error.
type counterEvent struct {
	name   string
	typ    uint32
	config uint64
}

var defaultEvents = []counterEvent{
	{"cycles", 0, 0}, {"instructions", 0, 1}, {"branch-misses", 0, 5}, {"cache-misses", 0, 3},
	{"task-clock", 1, 1}, {"context-switches", 1, 3}, {"cpu-migrations", 1, 4}, {"page-faults", 1, 2},
}

const (
	sysPerfEventOpen = 298
	iocEnable        = 0x2400
	iocDisable       = 0x2401
	iocReset         = 0x2403
)

type counter struct {
	ev        counterEvent
	fds       []int
	err       string
	value     float64
	supported bool
	enabled   uint64
	running   uint64
}

type Counters struct{ cs []*counter }

func perfOpen(ev counterEvent, tid int, excludeKernel bool) (int, error) {
	var attr [64]byte
	binary.LittleEndian.PutUint32(attr[0:], ev.typ)
	binary.LittleEndian.PutUint32(attr[4:], 64)
	binary.LittleEndian.PutUint64(attr[8:], ev.config)
	binary.LittleEndian.PutUint64(attr[32:], 1|2) // TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING
	flags := uint64(1 | 2)                        // disabled, inherit
	if excludeKernel {
		flags |= 1<<5 | 1<<6
	}
	binary.LittleEndian.PutUint64(attr[40:], flags)
	fd, _, e := syscall.Syscall6(sysPerfEventOpen, uintptr(unsafe.Pointer(&attr[0])), uintptr(tid),
		^uintptr(0), ^uintptr(0), 8 /* PERF_FLAG_FD_CLOEXEC */, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func OpenCounters() *Counters {
	c := &Counters{}
	tids := []int{}
	if ents, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, e := range ents {
			if t, err := strconv.Atoi(e.Name()); err == nil {
				tids = append(tids, t)
			}
		}
	}
	if len(tids) == 0 {
		tids = []int{0}
	}
	for _, ev := range defaultEvents {
		ct := &counter{ev: ev}
		for _, tid := range tids {
			fd, err := perfOpen(ev, tid, false)
			if err == syscall.EACCES || err == syscall.EPERM {
				fd, err = perfOpen(ev, tid, true)
			}
			if err != nil {
				if en, ok := err.(syscall.Errno); ok && en == syscall.ESRCH {
					continue // thread exited meanwhile
				}
				ct.err = fmt.Sprintf("perf_event_open: %v", err)
				break
			}
			ct.fds = append(ct.fds, fd)
		}
		if ct.err != "" {
			for _, fd := range ct.fds {
				syscall.Close(fd)
			}
			ct.fds = nil
		}
		c.cs = append(c.cs, ct)
	}
	return c
}

func ioctl(fd int, req uintptr) { syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, 0) }

func (c *Counters) Start() {
	for _, ct := range c.cs {
		for _, fd := range ct.fds {
			ioctl(fd, iocReset)
		}
	}
	for _, ct := range c.cs {
		for _, fd := range ct.fds {
			ioctl(fd, iocEnable)
		}
	}
}

func (c *Counters) Stop() {
	for _, ct := range c.cs {
		for _, fd := range ct.fds {
			ioctl(fd, iocDisable)
		}
	}
	for _, ct := range c.cs {
		if len(ct.fds) == 0 {
			continue
		}
		var buf [24]byte
		total := 0.0
		ok := false
		for _, fd := range ct.fds {
			n, err := syscall.Read(fd, buf[:])
			if err != nil || n != 24 {
				continue
			}
			raw := binary.LittleEndian.Uint64(buf[0:])
			en := binary.LittleEndian.Uint64(buf[8:])
			run := binary.LittleEndian.Uint64(buf[16:])
			ct.enabled += en
			ct.running += run
			if run == 0 {
				continue
			}
			ok = true
			if run < en {
				total += float64(raw) * float64(en) / float64(run)
			} else {
				total += float64(raw)
			}
		}
		ct.supported = ok
		ct.value = total
		if !ok {
			ct.err = "never scheduled on the PMU (time_running = 0)"
		}
	}
}

func (c *Counters) JSON() (map[string]interface{}, map[string]interface{}) {
	vals := map[string]interface{}{}
	info := map[string]interface{}{}
	for _, ct := range c.cs {
		if ct.supported {
			vals[ct.ev.name] = ct.value
			info[ct.ev.name] = map[string]interface{}{"group": nil, "time_enabled": ct.enabled,
				"time_running": ct.running, "multiplexed": ct.running < ct.enabled, "threads": len(ct.fds)}
		} else {
			vals[ct.ev.name] = "unsupported"
			e := ct.err
			if e == "" {
				e = "not read"
			}
			info[ct.ev.name] = map[string]interface{}{"error": e}
		}
	}
	return vals, info
}
