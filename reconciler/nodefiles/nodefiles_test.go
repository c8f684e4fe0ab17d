package nodefiles

import (
	"strings"
	"testing"
)

func TestEnvFile(t *testing.T) {
	got := EnvFile(map[string]string{"B": `a "quoted" $HOME \ back` + "`tick`", "A": "plain", "C": "two\nlines"})
	want := "A=\"plain\"\n" +
		"B=\"a \\\"quoted\\\" \\$HOME \\\\ back\\`tick\\`\"\n" +
		"C=\"two\nlines\"\n"
	if got != want {
		t.Fatalf("EnvFile:\n%s\nwant:\n%s", got, want)
	}
	if got := EnvFile(nil); got != "# no environment variables\n" {
		t.Fatalf("empty env gives %q; the node's helper refuses empty content", got)
	}
}

func TestUnit(t *testing.T) {
	u := Unit(Slot{App: "hello", Slot: Green, Commit: strings.Repeat("a", 40), Release: ReleaseID(strings.Repeat("a", 40), "b1"), Port: 20001})
	for _, want := range []string{
		"User=bakery-agent\n",
		"WorkingDirectory=/var/lib/bakery/apps/hello/releases/" + strings.Repeat("a", 40) + "-b1\n",
		"Environment=PORT=20001\n",
		"EnvironmentFile=/etc/bakery/env/bakery-hello-green.env\n",
		"ExecStart=/bin/sh /var/lib/bakery/apps/hello/run/green.sh\n",
		"Restart=on-failure\n",
		"WantedBy=multi-user.target\n",
		"commit aaaaaaaaaaaa\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(u, `"`) {
		t.Error("the unit must not need quoting")
	}
}

func TestNginxSite(t *testing.T) {
	s := NginxSite(Site{App: "hello", Slot: Blue, Hosts: []string{"a.example.test", "b.example.test"}, Port: 20000})
	for _, want := range []string{
		"upstream bakery-hello {\n    server 127.0.0.1:20000",
		"listen 80;",
		"server_name a.example.test b.example.test;",
		"proxy_pass http://bakery-hello;",
		"add_header X-Bakery-Slot hello/blue always;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("site lacks %q:\n%s", want, s)
		}
	}
	// The node's helper refuses quotes and backslashes.
	if strings.ContainsAny(s, "\"'\\") {
		t.Errorf("site has quotes or backslashes:\n%s", s)
	}
	// Without hosts the app's own name is the server name: never the
	// default server.
	if s := NginxSite(Site{App: "api", Slot: Green, Port: 1}); !strings.Contains(s, "server_name api;") {
		t.Errorf("host-less site:\n%s", s)
	}
}

func TestState(t *testing.T) {
	st := &AppState{App: "hello", Active: Green, Slots: map[string]SlotState{Green: {Commit: "c", Port: 2, Revision: 3, SpecHash: "h"}}, Revision: 3}
	back, err := ParseState(st.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if back.Active != Green || back.Slots[Green].Port != 2 || back.Version != StateVersion {
		t.Fatalf("round trip: %+v", back)
	}
	for _, bad := range []string{`{`, `{"version": 9}`, `{"version": 1, "active": "red"}`} {
		if _, err := ParseState([]byte(bad)); err == nil {
			t.Errorf("ParseState(%s) accepted", bad)
		}
	}
	if Other(Blue) != Green || Other(Green) != Blue || Other("") != Blue {
		t.Fatal("Other")
	}
}
