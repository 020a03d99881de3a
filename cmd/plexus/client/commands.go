package client

import (
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// channelDoc is the v3 channel document.
type channelDoc struct {
	Channel string            `json:"channel"`
	Tokens  map[string]string `json:"tokens,omitempty"`
	Drains  []drainDoc        `json:"drains,omitempty"`
}

// drainDoc is a v3 drain, with its status when fetched alone.
type drainDoc struct {
	ID     int64        `json:"id"`
	Token  string       `json:"token"`
	URL    string       `json:"url,omitempty"`
	Status *drainStatus `json:"status,omitempty"`
}

type drainStatus struct {
	Delivered     int64      `json:"delivered"`
	Dropped       int64      `json:"dropped"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	LagMessages   int64      `json:"lag_messages"`
	LagSeconds    float64    `json:"lag_seconds"`
	Node          string     `json:"node,omitempty"`
}

func chanPath(id string) string { return "/v3/channels/" + url.PathEscape(id) }

const channelsUsage = `Usage:
  plexus channels create NAME [-token NAME]...   create a channel (with tokens)
  plexus channels list                           list channels
  plexus channels get NAME                       show a channel's tokens and drains
  plexus channels delete NAME                    delete a channel, its tokens and drains

Every command takes -url, -cred and -json (see plexus channels list -h).
`

func channelsCmd(e *env, args []string) error {
	return e.sub(args, channelsUsage, map[string]func([]string) error{
		"create": func(args []string) error {
			var tokens multi
			fs := e.flags("create", "  plexus channels create NAME [-token NAME]...")
			fs.Var(&tokens, "token", "a token to create with the channel (repeat for more)")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			id, err := e.one(fs, args, "NAME")
			if err != nil {
				return err
			}
			err = e.call("GET", chanPath(id), nil, nil)
			switch statusOf(err) {
			case 0:
				return fmt.Errorf("channel %q already exists (add tokens with plexus tokens add)", id)
			case http.StatusNotFound:
			default:
				return err
			}
			var body any
			if len(tokens) > 0 {
				body = map[string]any{"tokens": []string(tokens)}
			}
			var doc channelDoc
			if err := e.call("PUT", chanPath(id), body, &doc); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(doc)
			}
			fmt.Fprintf(e.Stdout, "Created channel %s\n", id)
			e.printTokens(doc.Tokens)
			return nil
		},
		"list": func(args []string) error {
			fs := e.flags("list", "  plexus channels list")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			if err := e.none(fs, args); err != nil {
				return err
			}
			var docs []channelDoc
			if err := e.call("GET", "/v3/channels", nil, &docs); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(docs)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHANNEL\tTOKENS\tDRAINS")
			for _, d := range docs {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", d.Channel, len(d.Tokens), len(d.Drains))
			}
			return tw.Flush()
		},
		"get": func(args []string) error {
			fs := e.flags("get", "  plexus channels get NAME")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			id, err := e.one(fs, args, "NAME")
			if err != nil {
				return err
			}
			var doc channelDoc
			if err := e.call("GET", chanPath(id), nil, &doc); err != nil {
				return notFound(err, "channel %q", id)
			}
			if e.json {
				return e.printJSON(doc)
			}
			fmt.Fprintf(e.Stdout, "Channel %s\n", doc.Channel)
			e.printTokens(doc.Tokens)
			if len(doc.Drains) == 0 {
				fmt.Fprintln(e.Stdout, "No drains")
			}
			for _, d := range doc.Drains {
				fmt.Fprintf(e.Stdout, "  drain %d  %s\n", d.ID, orDash(d.URL))
			}
			return nil
		},
		"delete": func(args []string) error {
			fs := e.flags("delete", "  plexus channels delete NAME")
			id, err := e.one(fs, args, "NAME")
			if err != nil {
				return err
			}
			if err := e.call("DELETE", chanPath(id), nil, nil); err != nil {
				return notFound(err, "channel %q", id)
			}
			fmt.Fprintf(e.Stdout, "Deleted channel %s\n", id)
			return nil
		},
	})
}

func (e *env) printTokens(tokens map[string]string) {
	if len(tokens) == 0 {
		fmt.Fprintln(e.Stdout, "No tokens")
		return
	}
	names := make([]string, 0, len(tokens))
	for n := range tokens {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  token %s\t%s\n", n, tokens[n])
	}
	tw.Flush()
}

const tokensUsage = `Usage:
  plexus tokens add CHANNEL NAME   create a token; hosts send it to route their logs to CHANNEL
`

func tokensCmd(e *env, args []string) error {
	return e.sub(args, tokensUsage, map[string]func([]string) error{
		"add": func(args []string) error {
			fs := e.flags("add", "  plexus tokens add CHANNEL NAME")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			pos, err := e.n(fs, args, "CHANNEL", "NAME")
			if err != nil {
				return err
			}
			var tok struct {
				Name  string `json:"name"`
				Token string `json:"token"`
			}
			if err := e.call("POST", chanPath(pos[0])+"/tokens", map[string]string{"name": pos[1]}, &tok); err != nil {
				return notFound(err, "channel %q", pos[0])
			}
			if e.json {
				return e.printJSON(tok)
			}
			fmt.Fprintf(e.Stdout, "Token %s of channel %s: %s\n", tok.Name, pos[0], tok.Token)
			return nil
		},
	})
}

const drainsUsage = `Usage:
  plexus drains add CHANNEL URL    deliver CHANNEL's log to URL (https://…, syslog://host:port, syslog+tls://…)
  plexus drains list CHANNEL       list CHANNEL's drains with their status and lag
  plexus drains get CHANNEL ID     show one drain's status
  plexus drains rm CHANNEL ID      remove a drain
`

func drainsCmd(e *env, args []string) error {
	get := func(ch string, id int64) (drainDoc, error) {
		var d drainDoc
		err := e.call("GET", fmt.Sprintf("%s/drains/%d", chanPath(ch), id), nil, &d)
		return d, notFound(err, "drain %d of channel %q", id, ch)
	}
	drainID := func(s string) (int64, error) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return 0, usagef("drain id %q: want a number (see plexus drains list CHANNEL)", s)
		}
		return id, nil
	}
	return e.sub(args, drainsUsage, map[string]func([]string) error{
		"add": func(args []string) error {
			fs := e.flags("add", "  plexus drains add CHANNEL URL")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			pos, err := e.n(fs, args, "CHANNEL", "URL")
			if err != nil {
				return err
			}
			var d drainDoc
			if err := e.call("POST", chanPath(pos[0])+"/drains", map[string]string{"url": pos[1]}, &d); err != nil {
				return notFound(err, "channel %q", pos[0])
			}
			if e.json {
				return e.printJSON(d)
			}
			fmt.Fprintf(e.Stdout, "Added drain %d to channel %s: %s (drain token %s)\n", d.ID, pos[0], d.URL, d.Token)
			return nil
		},
		"list": func(args []string) error {
			fs := e.flags("list", "  plexus drains list CHANNEL")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			ch, err := e.one(fs, args, "CHANNEL")
			if err != nil {
				return err
			}
			var doc channelDoc
			if err := e.call("GET", chanPath(ch), nil, &doc); err != nil {
				return notFound(err, "channel %q", ch)
			}
			ds := make([]drainDoc, 0, len(doc.Drains))
			for _, d := range doc.Drains {
				full, err := get(ch, d.ID)
				if err != nil {
					return err
				}
				ds = append(ds, full)
			}
			if e.json {
				return e.printJSON(ds)
			}
			if len(ds) == 0 {
				fmt.Fprintf(e.Stdout, "Channel %s has no drains\n", ch)
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tURL\tDELIVERED\tDROPPED\tLAG\tLAST ERROR")
			for _, d := range ds {
				st := d.Status
				if st == nil {
					st = &drainStatus{}
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", d.ID, orDash(d.URL), st.Delivered, st.Dropped, lag(st), orDash(st.LastError))
			}
			return tw.Flush()
		},
		"get": func(args []string) error {
			fs := e.flags("get", "  plexus drains get CHANNEL ID")
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			pos, err := e.n(fs, args, "CHANNEL", "ID")
			if err != nil {
				return err
			}
			id, err := drainID(pos[1])
			if err != nil {
				return err
			}
			d, err := get(pos[0], id)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(d)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Drain\t%d\n", d.ID)
			fmt.Fprintf(tw, "URL\t%s\n", orDash(d.URL))
			fmt.Fprintf(tw, "Token\t%s\n", d.Token)
			if st := d.Status; st != nil {
				fmt.Fprintf(tw, "Delivered\t%d\n", st.Delivered)
				fmt.Fprintf(tw, "Dropped\t%d\n", st.Dropped)
				fmt.Fprintf(tw, "Lag\t%s\n", lag(st))
				fmt.Fprintf(tw, "Last success\t%s\n", when(st.LastSuccessAt))
				fmt.Fprintf(tw, "Last error\t%s\n", orDash(st.LastError))
				if st.LastErrorAt != nil {
					fmt.Fprintf(tw, "Last error at\t%s\n", when(st.LastErrorAt))
				}
				if st.Node != "" {
					fmt.Fprintf(tw, "Node\t%s\n", st.Node)
				}
			}
			return tw.Flush()
		},
		"rm": func(args []string) error {
			fs := e.flags("rm", "  plexus drains rm CHANNEL ID")
			pos, err := e.n(fs, args, "CHANNEL", "ID")
			if err != nil {
				return err
			}
			id, err := drainID(pos[1])
			if err != nil {
				return err
			}
			if err := e.call("DELETE", fmt.Sprintf("%s/drains/%d", chanPath(pos[0]), id), nil, nil); err != nil {
				return notFound(err, "drain %d of channel %q", id, pos[0])
			}
			fmt.Fprintf(e.Stdout, "Removed drain %d from channel %s\n", id, pos[0])
			return nil
		},
	})
}

func lag(st *drainStatus) string {
	s := fmt.Sprintf("%d msgs", st.LagMessages)
	if st.LagSeconds > 0 {
		s += fmt.Sprintf(" / %s", (time.Duration(st.LagSeconds * float64(time.Second))).Round(time.Millisecond))
	}
	return s
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), time.Since(*t).Round(time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const credsUsage = `Usage:
  plexus creds create -name NAME [-full-api] [-any-channel]   create a credential (shown once)
  plexus creds list                                           list credentials
  plexus creds revoke ID                                      revoke a credential

Credentials are managed with the admin key (PLEXUS_AUTH_KEY, -cred or <data-dir>/auth_key).
`

func credsCmd(e *env, args []string) error {
	// -api-url and -auth-key: the names this command took before it joined
	// the client; kept so scripts keep working.
	legacy := func(fs *flag.FlagSet) {
		fs.StringVar(&e.url, "api-url", "", "same as -url")
		fs.StringVar(&e.cred, "auth-key", "", "same as -cred")
	}
	return e.sub(args, credsUsage, map[string]func([]string) error{
		"create": func(args []string) error {
			fs := e.flags("create", "  plexus creds create -name NAME [-full-api] [-any-channel]")
			legacy(fs)
			name := fs.String("name", "", "the credential's name (required)")
			fullAPI := fs.Bool("full-api", false, "may use the management API")
			anyChannel := fs.Bool("any-channel", false, "may POST /logs for any channel (each message routed by its own token)")
			if err := e.none(fs, args); err != nil {
				return err
			}
			if *name == "" {
				return usagef("-name is required")
			}
			var raw map[string]any
			if err := e.call("POST", "/v3/creds", map[string]any{"name": *name, "full_api": *fullAPI, "any_channel": *anyChannel}, &raw); err != nil {
				return err
			}
			if err := e.printJSON(raw); err != nil {
				return err
			}
			id, _ := raw["id"].(string)
			pass, _ := raw["pass"].(string)
			fmt.Fprintf(e.Stdout, "\nexport PLEXUS_CRED=%s:%s\nAuthorization: Basic %s\n", id, pass, base64.StdEncoding.EncodeToString([]byte(id+":"+pass)))
			return nil
		},
		"list": func(args []string) error {
			fs := e.flags("list", "  plexus creds list")
			legacy(fs)
			fs.BoolVar(&e.json, "json", false, "print the API's JSON")
			if err := e.none(fs, args); err != nil {
				return err
			}
			var list []map[string]any
			if err := e.call("GET", "/v3/creds", nil, &list); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(list)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tFULL_API\tANY_CHANNEL")
			for _, c := range list {
				fmt.Fprintf(tw, "%v\t%v\t%v\t%v\n", c["id"], c["name"], c["full_api"], c["any_channel"])
			}
			return tw.Flush()
		},
		"revoke": func(args []string) error {
			fs := e.flags("revoke", "  plexus creds revoke ID")
			legacy(fs)
			id, err := e.one(fs, args, "ID")
			if err != nil {
				return err
			}
			if err := e.call("DELETE", "/v3/creds/"+url.PathEscape(id), nil, nil); err != nil {
				return notFound(err, "credential %q", id)
			}
			fmt.Fprintln(e.Stdout, "Revoked", id)
			return nil
		},
	})
}

// none parses flags and refuses positional arguments, then connects.
func (e *env) none(fs *flag.FlagSet, args []string) error {
	_, err := e.n(fs, args)
	return err
}

// one parses flags and exactly one positional argument, then connects.
func (e *env) one(fs *flag.FlagSet, args []string, name string) (string, error) {
	pos, err := e.n(fs, args, name)
	if err != nil {
		return "", err
	}
	return pos[0], nil
}

// n parses flags and exactly the named positional arguments, then connects.
func (e *env) n(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := e.parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(names) {
		want := "no arguments"
		if len(names) > 0 {
			want = strings.Join(names, " ")
		}
		if len(pos) < len(names) {
			return nil, usagef("missing %s (usage: %s %s)", strings.Join(names[len(pos):], " "), e.prog, want)
		}
		return nil, usagef("unexpected argument %q (usage: %s %s)", pos[len(names)], e.prog, want)
	}
	return pos, e.connect()
}

// notFound turns a 404 into a sentence naming what was not found.
func notFound(err error, format string, a ...any) error {
	if statusOf(err) == http.StatusNotFound {
		return fmt.Errorf("no such "+format, a...)
	}
	return err
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
