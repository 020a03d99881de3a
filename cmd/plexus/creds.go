package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// credsMain implements `plexus creds create|list|revoke` against a running
// node's credentials API (admin key only).
func credsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plexus creds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api-url", firstEnv("http://localhost:8001", "PLEXUS_API_URL", "LOGPLEX_API_ENDPOINT_URL"), "the node's API base URL [PLEXUS_API_URL]")
	authKey := fs.String("auth-key", firstEnv("", "PLEXUS_AUTH_KEY", "LOGPLEX_AUTH_KEY"), "admin key [PLEXUS_AUTH_KEY]; default: read from <data-dir>/auth_key")
	dataDir := fs.String("data-dir", firstEnv("./data", "PLEXUS_DATA_DIR"), "data dir holding a generated admin key [PLEXUS_DATA_DIR]")
	name := fs.String("name", "", "create: the credential's name")
	fullAPI := fs.Bool("full-api", false, "create: may use the management API")
	anyChannel := fs.Bool("any-channel", false, "create: may POST /logs for any channel (each message routed by its own token)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  plexus creds create -name NAME [-full-api] [-any-channel]
  plexus creds list
  plexus creds revoke ID

Flags:
`)
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *authKey == "" {
		if b, err := os.ReadFile(filepath.Join(*dataDir, "auth_key")); err == nil {
			*authKey = strings.TrimSpace(string(b))
		}
	}
	if *authKey == "" {
		fmt.Fprintln(stderr, "plexus creds: no admin key: set PLEXUS_AUTH_KEY or -auth-key")
		return 2
	}
	c := &apiClient{base: strings.TrimRight(*apiURL, "/"), key: *authKey}
	var err error
	switch cmd {
	case "create":
		if *name == "" {
			fmt.Fprintln(stderr, "plexus creds create: -name is required")
			return 2
		}
		var cred struct {
			ID, Pass, Name      string
			FullAPI, AnyChannel bool
		}
		body := map[string]any{"name": *name, "full_api": *fullAPI, "any_channel": *anyChannel}
		var raw map[string]any
		if err = c.do("POST", "/v3/creds", body, http.StatusCreated, &raw); err == nil {
			cred.ID, _ = raw["id"].(string)
			cred.Pass, _ = raw["pass"].(string)
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(raw)
			fmt.Fprintf(stdout, "\nAuthorization: Basic %s\n", base64.StdEncoding.EncodeToString([]byte(cred.ID+":"+cred.Pass)))
		}
	case "list":
		var list []map[string]any
		if err = c.do("GET", "/v3/creds", nil, http.StatusOK, &list); err == nil {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tFULL_API\tANY_CHANNEL")
			for _, c := range list {
				fmt.Fprintf(tw, "%v\t%v\t%v\t%v\n", c["id"], c["name"], c["full_api"], c["any_channel"])
			}
			tw.Flush()
		}
	case "revoke":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "plexus creds revoke: give one credential id")
			return 2
		}
		if err = c.do("DELETE", "/v3/creds/"+fs.Arg(0), nil, http.StatusNoContent, nil); err == nil {
			fmt.Fprintln(stdout, "revoked", fs.Arg(0))
		}
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "plexus creds:", err)
		return 1
	}
	return 0
}

type apiClient struct {
	base, key string
}

func (c *apiClient) do(method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Basic "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func firstEnv(def string, names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return def
}
