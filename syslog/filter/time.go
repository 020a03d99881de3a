package filter

import "time"

// ParseTimestamp parses an RFC 5424 TIMESTAMP (RFC 3339:
// YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)) without allocating, unlike
// time.Parse, which builds a zone for every offset other than Z.
func ParseTimestamp(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	min, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour > 23 || min > 59 || sec > 60 {
		return time.Time{}, false
	}
	p := 19
	nsec := 0
	if b[p] == '.' {
		p++
		digits := 0
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			if digits < 9 {
				nsec = nsec*10 + int(b[p]-'0')
				digits++
			}
			p++
		}
		if digits == 0 {
			return time.Time{}, false
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	offset := 0
	switch {
	case p == len(b)-1 && (b[p] == 'Z' || b[p] == 'z'):
	case p == len(b)-6 && (b[p] == '+' || b[p] == '-') && b[p+3] == ':':
		oh, ok1 := num(b[p+1 : p+3])
		om, ok2 := num(b[p+4 : p+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if b[p] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}
