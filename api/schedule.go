package api

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Schedule is a job that runs on a calendar in the deployment's active
// release, with the app's environment: a systemd timer on each node it
// runs on (runtime docker: a `docker run --rm` of the active image). A
// run sees the web process's environment (without PORT under systemd),
// BAKERY_SCHEDULE (its name) and BAKERY_RELEASE (the release it runs
// in); under systemd it runs as the app's user, sandboxed like the web
// process, with $HOME its writable data directory. After a rollout
// switches a node, the next run uses the new release. Its output is in
// the runtime logs (bakery logs deployment/NAME --runtime --schedule S);
// a failed run raises a ScheduleFailed event (and notification) once,
// when the control plane observes it (a resync before the next run of
// the schedule on that node).
type Schedule struct {
	// Name names the schedule (a DNS label of at most 20 characters,
	// unique within the deployment); its units are
	// bakery-APP-sched-NAME.timer and .service.
	Name string `json:"name"`
	// Schedule is a systemd calendar expression (OnCalendar=, e.g.
	// "*-*-* 03:00:00", "Mon..Fri 08:30", "hourly", "*:*:0/10") or a
	// 5-field cron expression ("*/5 * * * *"), which is converted to one.
	// Times are the node's local time unless the expression ends in UTC.
	// A run missed while the node was down runs once when it is back
	// (Persistent=true).
	Schedule string `json:"schedule"`
	// Command is run with /bin/sh in the active release's directory, as
	// the app's user (runtime docker: in a container of the active image).
	Command string `json:"command"`
	// Timeout stops a run that takes longer (whole seconds, at most 24h;
	// default 1h).
	Timeout *Duration `json:"timeout,omitempty"`
	// Concurrency is Forbid (default: a run that is due while the last
	// one still runs is skipped) or Allow (runs may overlap; each run is
	// started in the background, so the status reports its start only).
	Concurrency string `json:"concurrency,omitempty"`
	// Node is one (default: the first target node in name order whose
	// Node is Ready runs it; it moves when that node is no longer Ready
	// or no longer a target) or all (every target node runs it).
	Node string `json:"node,omitempty"`
}

// Schedule defaults and values.
const (
	DefaultScheduleTimeout = time.Hour
	ConcurrencyForbid      = "Forbid"
	ConcurrencyAllow       = "Allow"
	ScheduleNodeOne        = "one"
	ScheduleNodeAll        = "all"
	// MaxScheduleName is the longest schedule name (its unit names must
	// stay short).
	MaxScheduleName = 20
	// MaxScheduleTimeout bounds a schedule's timeout (the node helper's
	// seconds rule).
	MaxScheduleTimeout = 24 * time.Hour
)

// ScheduleStatus is what the nodes report about one schedule.
type ScheduleStatus struct {
	Name string `json:"name"`
	// Calendar is the OnCalendar expression the timer uses.
	Calendar string `json:"calendar,omitempty"`
	// Nodes are the nodes whose timer runs the schedule.
	Nodes []string `json:"nodes,omitempty"`
	// LastRun is when the last run started (on any of its nodes), Node
	// where.
	LastRun *Time  `json:"lastRun,omitempty"`
	Node    string `json:"node,omitempty"`
	// Result is running, succeeded or failed (with the exit status or
	// why: "failed: exit-code 3", "failed: timeout").
	Result string `json:"result,omitempty"`
	// Duration is how long the last finished run took.
	Duration *Duration `json:"duration,omitempty"`
	// NextRun is the earliest next run of its timers.
	NextRun *Time `json:"nextRun,omitempty"`
}

func defaultSchedules(s *DeploymentSpec) {
	for i := range s.Schedules {
		sc := &s.Schedules[i]
		if sc.Timeout == nil {
			sc.Timeout = &Duration{DefaultScheduleTimeout}
		}
		if sc.Concurrency == "" {
			sc.Concurrency = ConcurrencyForbid
		}
		if sc.Node == "" {
			sc.Node = ScheduleNodeOne
		}
	}
}

func validateSchedules(es *FieldErrors, s *DeploymentSpec) {
	seen := map[string]bool{}
	for i, sc := range s.Schedules {
		p := fmt.Sprintf("spec.schedules[%d]", i)
		switch {
		case ValidateName(sc.Name) != "" || len(sc.Name) > MaxScheduleName:
			es.add(p+".name", "must be a DNS-1123 label of at most 20 characters, not %q", sc.Name)
		case seen[sc.Name]:
			es.add(p+".name", "duplicate schedule %q", sc.Name)
		}
		seen[sc.Name] = true
		if _, err := OnCalendar(sc.Schedule); err != nil {
			es.add(p+".schedule", "must be a calendar expression or a 5-field cron expression: %v", err)
		}
		if strings.TrimSpace(sc.Command) == "" {
			es.add(p+".command", "is required")
		} else if strings.ContainsRune(sc.Command, 0) {
			es.add(p+".command", "must not contain NUL")
		}
		if t := sc.Timeout; t != nil && (t.Duration < time.Second || t.Duration > MaxScheduleTimeout || t.Duration%time.Second != 0) {
			es.add(p+".timeout", "must be whole seconds from 1s to 24h")
		}
		if sc.Concurrency != ConcurrencyForbid && sc.Concurrency != ConcurrencyAllow {
			es.add(p+".concurrency", "must be Forbid or Allow, not %q", sc.Concurrency)
		}
		if sc.Node != ScheduleNodeOne && sc.Node != ScheduleNodeAll {
			es.add(p+".node", "must be one or all, not %q", sc.Node)
		}
	}
}

// OnCalendar returns the systemd calendar expression of a schedule: a
// 5-field cron expression is converted (CronToOnCalendar), a calendar
// expression is checked (ValidateCalendar) and returned as is.
func OnCalendar(schedule string) (string, error) {
	if strings.TrimSpace(schedule) == "" {
		return "", fmt.Errorf("is required (a calendar expression such as \"*-*-* 03:00:00\" or cron \"0 3 * * *\")")
	}
	if len(strings.Fields(schedule)) == 5 || strings.HasPrefix(schedule, "@") {
		return CronToOnCalendar(schedule)
	}
	if err := ValidateCalendar(schedule); err != nil {
		return "", err
	}
	return schedule, nil
}

// calendarChars are the characters the node's helper accepts in a
// calendar expression (check_calendar), which also runs systemd-analyze
// calendar on it.
var calendarChars = regexp.MustCompile(`^[A-Za-z0-9*,./:~ -]{1,100}$`)

var calendarShorthands = map[string]bool{"minutely": true, "hourly": true, "daily": true, "weekly": true, "monthly": true,
	"yearly": true, "annually": true, "quarterly": true, "semiannually": true}

var weekdays = map[string]int{"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7,
	"monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6, "sunday": 7}

// ValidateCalendar checks a systemd calendar expression strictly:
// [WEEKDAYS] [DATE] [TIME] [UTC], or a shorthand (hourly, daily, …).
// WEEKDAYS is a list of names or name ranges (Mon..Fri); DATE is
// [YEAR-]MONTH-DAY and TIME HOUR:MINUTE[:SECOND], each component "*" or
// a list of values, ranges (a..b) and repetitions (a/n) in range. It
// accepts a subset of what systemd does (no "~" last-day forms, no time
// zones but UTC).
func ValidateCalendar(c string) error {
	if !calendarChars.MatchString(c) {
		return fmt.Errorf("%q is not a calendar expression (letters, digits, * , . / : - and spaces, at most 100 characters)", c)
	}
	f := strings.Fields(c)
	if strings.Join(f, " ") != c {
		return fmt.Errorf("%q: separate the parts of a calendar expression with single spaces", c)
	}
	if len(f) == 1 && calendarShorthands[strings.ToLower(f[0])] {
		return nil
	}
	if n := len(f); n > 1 && f[n-1] == "UTC" {
		f = f[:n-1]
	}
	if len(f) == 0 {
		return fmt.Errorf("%q has no date or time", c)
	}
	i := 0
	if err := checkWeekdays(f[0]); err == nil {
		i++
	} else if !strings.ContainsAny(f[0], "-:") {
		return fmt.Errorf("%q: %v", c, err)
	}
	hasDate, hasTime := false, false
	for ; i < len(f); i++ {
		var err error
		switch {
		case strings.Contains(f[i], ":") && !hasTime:
			hasTime = true
			err = checkTime(f[i])
		case strings.Contains(f[i], "-") && !hasDate && !hasTime:
			hasDate = true
			err = checkDate(f[i])
		default:
			err = fmt.Errorf("unexpected %q (want [WEEKDAYS] [DATE] [TIME] [UTC])", f[i])
		}
		if err != nil {
			return fmt.Errorf("%q: %v", c, err)
		}
	}
	return nil
}

func checkWeekdays(s string) error {
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "..")
		if _, ok := weekdays[strings.ToLower(a)]; !ok {
			return fmt.Errorf("%q is not a weekday", a)
		}
		if _, ok := weekdays[strings.ToLower(b)]; isRange && !ok {
			return fmt.Errorf("%q is not a weekday", b)
		}
	}
	return nil
}

func checkDate(s string) error {
	parts := strings.Split(s, "-")
	bounds := [][2]int{{1, 12}, {1, 31}}
	names := []string{"month", "day"}
	switch len(parts) {
	case 2:
	case 3:
		bounds = append([][2]int{{1970, 2199}}, bounds...)
		names = append([]string{"year"}, names...)
	default:
		return fmt.Errorf("date %q is not [YEAR-]MONTH-DAY", s)
	}
	for i, p := range parts {
		if err := checkComponent(p, bounds[i][0], bounds[i][1]); err != nil {
			return fmt.Errorf("date %q, %s: %v", s, names[i], err)
		}
	}
	return nil
}

func checkTime(s string) error {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return fmt.Errorf("time %q is not HOUR:MINUTE[:SECOND]", s)
	}
	bounds := [][2]int{{0, 23}, {0, 59}, {0, 59}}
	names := []string{"hour", "minute", "second"}
	for i, p := range parts {
		if err := checkComponent(p, bounds[i][0], bounds[i][1]); err != nil {
			return fmt.Errorf("time %q, %s: %v", s, names[i], err)
		}
	}
	return nil
}

// checkComponent accepts "*" or a list of N, N..M and N/STEP (N may be
// "*" before a step) within [lo, hi].
func checkComponent(s string, lo, hi int) error {
	if s == "*" {
		return nil
	}
	num := func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || v == "" || v[0] == '+' || v[0] == '-' || len(v) > 4 {
			return fmt.Errorf("%q is not a number", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is not in %d-%d", n, lo, hi)
		}
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		base, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > hi || strconv.Itoa(n) != step {
				return fmt.Errorf("repetition %q is not 1-%d", step, hi)
			}
			if base == "*" {
				continue
			}
		}
		a, b, isRange := strings.Cut(base, "..")
		if err := num(a); err != nil {
			return err
		}
		if isRange {
			if err := num(b); err != nil {
				return err
			}
		}
	}
	return nil
}

var cronMacros = map[string]string{"@yearly": "yearly", "@annually": "yearly", "@monthly": "monthly",
	"@weekly": "weekly", "@daily": "daily", "@midnight": "daily", "@hourly": "hourly"}

var cronMonths = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var cronDays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
var calDays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// CronToOnCalendar converts a 5-field cron expression (minute hour
// day-of-month month day-of-week, with *, lists, ranges a-b, steps /n and
// month and day names) or a macro (@hourly, @daily, …) to a systemd
// calendar expression. A cron expression that restricts both the day of
// the month and of the week (which cron runs on either) is refused:
// systemd matches both.
func CronToOnCalendar(cron string) (string, error) {
	if m, ok := cronMacros[strings.TrimSpace(cron)]; ok {
		return m, nil
	}
	f := strings.Fields(cron)
	if len(f) != 5 {
		return "", fmt.Errorf("%q is neither a calendar expression nor a 5-field cron expression", cron)
	}
	type field struct {
		name   string
		lo, hi int
		names  []string
		base   int // index of names[0]
	}
	fields := []field{{"minute", 0, 59, nil, 0}, {"hour", 0, 23, nil, 0}, {"day of month", 1, 31, nil, 0},
		{"month", 1, 12, cronMonths, 1}, {"day of week", 0, 7, cronDays, 0}}
	vals := make([][]int, 5) // nil: every value ("*")
	for i, fd := range fields {
		v, err := cronField(f[i], fd.lo, fd.hi, fd.names, fd.base)
		if err != nil {
			return "", fmt.Errorf("cron %q, %s: %v", cron, fd.name, err)
		}
		vals[i] = v
	}
	if vals[2] != nil && vals[4] != nil {
		return "", fmt.Errorf("cron %q restricts both the day of the month and the day of the week (cron runs on either, systemd on both): use two schedules or a calendar expression", cron)
	}
	list := func(v []int, width int, step string) string {
		if v == nil {
			return "*"
		}
		if step != "" {
			return step
		}
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = fmt.Sprintf("%0*d", width, n)
		}
		return strings.Join(s, ",")
	}
	// "*/n" stays a repetition: 0/n (minute, hour), 1/n (day, month).
	step := func(i int, start int) string {
		if b, s, ok := strings.Cut(f[i], "/"); ok && b == "*" {
			return fmt.Sprintf("%d/%s", start, s)
		}
		return ""
	}
	var b strings.Builder
	if vals[4] != nil {
		days := map[int]bool{}
		for _, d := range vals[4] {
			days[d%7] = true
		}
		var names []string
		for _, d := range []int{1, 2, 3, 4, 5, 6, 0} { // systemd's week starts on Monday
			if days[d] {
				names = append(names, calDays[d])
			}
		}
		b.WriteString(strings.Join(names, ",") + " ")
	}
	fmt.Fprintf(&b, "*-%s-%s %s:%s:00", list(vals[3], 2, step(3, 1)), list(vals[2], 2, step(2, 1)),
		list(vals[1], 2, step(1, 0)), list(vals[0], 2, step(0, 0)))
	out := b.String()
	if err := ValidateCalendar(out); err != nil {
		return "", fmt.Errorf("cron %q: %v", cron, err)
	}
	return out, nil
}

// cronField returns the sorted values of one cron field, or nil for "*".
func cronField(s string, lo, hi int, names []string, base int) ([]int, error) {
	if s == "*" {
		return nil, nil
	}
	val := func(v string) (int, error) {
		for i, n := range names {
			if strings.EqualFold(v, n) {
				return i + base, nil
			}
		}
		n, err := strconv.Atoi(v)
		if err != nil || v == "" || v[0] == '+' || v[0] == '-' || len(v) > 2 {
			return 0, fmt.Errorf("%q is not a number", v)
		}
		if n < lo || n > hi {
			return 0, fmt.Errorf("%d is not in %d-%d", n, lo, hi)
		}
		return n, nil
	}
	set := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n < 1 || n > hi || strconv.Itoa(n) != stepS {
				return nil, fmt.Errorf("step %q is not 1-%d", stepS, hi)
			}
			step = n
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = val(x); err != nil {
				return nil, err
			}
			if b, err = val(y); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			var err error
			if a, err = val(rng); err != nil {
				return nil, err
			}
			b = a
			if hasStep {
				b = hi
			}
		}
		for n := a; n <= b; n += step {
			set[n] = true
		}
	}
	out := make([]int, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}
