package filter

// LookupSD finds parameter name in the SD element id of an RFC 5424
// STRUCTURED-DATA field sd ("-" or "[id p="v" …]…"). It returns the raw
// value (a sub-slice of sd) and whether it holds backslash escapes. It does
// not allocate.
func LookupSD(sd []byte, id, name string) (val []byte, escaped, ok bool) {
	p := 0
	for p < len(sd) && sd[p] == '[' {
		p++
		start := p
		for p < len(sd) && sd[p] != ' ' && sd[p] != ']' {
			p++
		}
		match := string(sd[start:p]) == id
		// params: SP name="value"
		for p < len(sd) && sd[p] == ' ' {
			for p < len(sd) && sd[p] == ' ' {
				p++
			}
			ns := p
			for p < len(sd) && sd[p] != '=' && sd[p] != ' ' && sd[p] != ']' {
				p++
			}
			pname := sd[ns:p]
			if p+1 >= len(sd) || sd[p] != '=' || sd[p+1] != '"' {
				return nil, false, false
			}
			p += 2
			vs := p
			esc := false
			for p < len(sd) && sd[p] != '"' {
				if sd[p] == '\\' {
					esc = true
					p++
				}
				p++
			}
			if p >= len(sd) {
				return nil, false, false
			}
			if match && string(pname) == name {
				return sd[vs:p], esc, true
			}
			p++ // closing quote
		}
		if p >= len(sd) || sd[p] != ']' {
			return nil, false, false
		}
		p++
	}
	return nil, false, false
}

// unescapeSD returns v with RFC 5424's \" \\ \] escapes resolved.
func unescapeSD(v []byte) string {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
		}
		out = append(out, v[i])
	}
	return string(out)
}
