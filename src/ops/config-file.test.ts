import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveServeConfig } from "../config.ts";
import { isTsdbError } from "../errors.ts";
import { DEFAULT_CONFIG_FILE, configFilePath, loadConfigFile, mergeServeInputs, parseConfigText, readConfigFile, renderConfig, type ConfigFileInput } from "./config-file.ts";

const dir = mkdtempSync(join(tmpdir(), "tsdb-pair-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("reading a config file", () => {
  const good: Array<[string, string, ConfigFileInput]> = [
    ["an empty file sets nothing", "", {}],
    ["comments and blank lines are skipped", "# a comment\n\n   # indented\n", {}],
    ["a string, a number and a boolean", 'listen = "127.0.0.1:9000"\nmax-body = 1000\nno-auto-create = true\n', { listen: "127.0.0.1:9000", maxBody: 1000, autoCreate: false }],
    ["a size may be a string with a unit", 'max-body = "64MB"', { maxBody: "64MB" }],
    ["no-auto-create = false keeps auto-create on", "no-auto-create = false", { autoCreate: true }],
    ["an optional [serve] table", '[serve]\ndata = "/var/lib/tsdb-pair"', { data: "/var/lib/tsdb-pair" }],
    ["comments may follow a value", 'sync = "normal" # survives a crash', { sync: "normal" }],
    ["literal strings keep backslashes", "data = 'C:\\data'", { data: "C:\\data" }],
    ["basic strings take TOML escapes", 'auth-token = "a\\"b\\\\c\\u00e9"', { authToken: 'a"b\\cé' }],
    ["a # inside a string is not a comment", 'auth-token = "x#y"', { authToken: "x#y" }],
    ["integers may have underscores", "max-body = 25_000_000", { maxBody: 25_000_000 }],
    ["the peer may be a list, one address per ring", 'peer = ["iotdb-2a", "iotdb-2b:8087"]', { peer: ["iotdb-2a", "iotdb-2b:8087"] }],
    ["the peer may be a comma-separated string", 'peer = "iotdb-2a,iotdb-2b"', { peer: "iotdb-2a,iotdb-2b" }],
    [
      "the pairing and TLS settings",
      'peer-secret-file = "/etc/tsdb-pair/secret"\nwal-retention = "7d"\nwal-max-bytes = "1GB"\ntls-cert = "/c.pem"\ntls-key = "/k.pem"\npeer-ca = "/ca.pem"\nlog-format = "json"\nmax-select-points = 1000000\nmax-select-series = "5000"',
      {
        peerSecretFile: "/etc/tsdb-pair/secret",
        walRetention: "7d",
        walMaxBytes: "1GB",
        tlsCert: "/c.pem",
        tlsKey: "/k.pem",
        peerCa: "/ca.pem",
        logFormat: "json",
        maxSelectPoints: 1_000_000,
        maxSelectSeries: 5000,
      },
    ],
    ["CRLF line ends and a byte-order mark are fine", '\uFEFFnode-id = "iotdb-1"\r\nsync = "full"\r\n', { nodeId: "iotdb-1", sync: "full" }],
  ];
  for (const [name, text, want] of good) {
    test(`reads ${name}`, () => {
      expect(loadConfigFile(file("good.toml", text))).toEqual(want);
    });
  }

  const bad: Array<[string, string, string]> = [
    ["an unknown key, suggesting the flag's spelling", 'listen = ":1"\nmax_body = 5', "bad.toml:2: unknown key \"max_body\" (did you mean max-body?)"],
    ["an environment variable's name as a key", "TSDB_PAIR_SYNC = 'off'", 'bad.toml:1: unknown key "TSDB_PAIR_SYNC" (did you mean sync?)'],
    ["a key set twice", 'sync = "full"\n\nsync = "off"', "bad.toml:3: sync is set twice (first on line 1)"],
    ["a value the flag refuses", 'sync = "sometimes"', 'bad.toml:1: invalid sync "sometimes": expected full, normal or off'],
    ["a bad listen address", 'listen = "nowhere"', 'bad.toml:1: invalid listen "nowhere"'],
    ["a bad size", 'max-body = "huge"', 'bad.toml:1: invalid max-body "huge"'],
    ["a bad node id", 'node-id = "-x"', 'bad.toml:1: invalid node-id "-x": use 1-63 letters'],
    ["a bad duration", 'wal-retention = "forever"', 'bad.toml:1: invalid wal-retention "forever"'],
    ["a bad peer", 'peer = "a/b?c"', "bad.toml:1: invalid peer \"a/b?c\": expected HOST[:PORT]"],
    ["a number where a string belongs", "listen = 8086", "bad.toml:1: listen must be a string (in quotes), not a number"],
    ["a string where a boolean belongs", 'no-auto-create = "yes"', "bad.toml:1: no-auto-create must be true or false, not a string"],
    ["an unquoted string", "sync = full", 'bad.toml:1: invalid value "full": strings need quotes, e.g. "full"'],
    ["an unclosed string", 'data = "/var', 'bad.toml:1: string not closed with " (strings must fit on one line)'],
    ["text after the value", 'sync = "full" "off"', 'bad.toml:1: unexpected "\\"off\\"" after the value'],
    ["a missing value", "sync =", 'bad.toml:1: missing value after "="'],
    ["a line without =", "sync", 'bad.toml:1: expected "=" after key "sync"'],
    ["an unknown table", "[peer]\nx = 1", "bad.toml:1: unknown table [peer]: only an optional [serve] is allowed"],
    ["a dotted key", "serve.listen = ':1'", "bad.toml:1: dotted keys are not supported"],
    ["a zero count", "max-select-points = 0", "bad.toml:1: max-select-points must be a positive integer"],
    ["an empty data directory", 'data = ""', "bad.toml:1: data must not be empty"],
    ["a bad escape", 'auth-token = "\\q"', "bad.toml:1: invalid escape \\q in a string"],
  ];
  for (const [name, text, message] of bad) {
    test(`refuses ${name}, naming the file and line`, () => {
      const path = file("bad.toml", text);
      let err: unknown;
      try {
        loadConfigFile(path);
      } catch (e) {
        err = e;
      }
      expect(isTsdbError(err, "config")).toBe(true);
      expect((err as Error).message).toStartWith(`${join(dir, message.split(":")[0]!)}:${message.split(":").slice(1).join(":")}`);
    });
  }

  test("refuses a file that is not there, saying so", () => {
    expect(() => loadConfigFile(join(dir, "missing.toml"))).toThrow(`cannot read config file ${join(dir, "missing.toml")}: no such file`);
  });

  test("tells which line set each setting", () => {
    const parsed = readConfigFile(file("lines.toml", '# header\nlisten = ":9"\n\npeer = "b"\n'));
    expect(parsed.lines).toEqual({ listen: 2, peer: 4 });
  });
});

describe("layering flags, environment, file and defaults", () => {
  test("a flag wins over the environment, which wins over the file, which wins over the default", () => {
    const file = parseConfigText('listen = "0.0.0.0:1111"\ndata = "/from-file"\nsync = "normal"\nmax-body = "1MB"', "f.toml").input;
    const { input, sources } = mergeServeInputs(
      { source: "flag", input: { listen: "127.0.0.1:3333" } },
      { source: "env", input: { listen: "127.0.0.1:2222", data: "/from-env" } },
      { source: "file", input: file },
    );
    expect(input).toEqual({ listen: "127.0.0.1:3333", data: "/from-env", sync: "normal", maxBody: "1MB" });
    expect(sources).toEqual({ listen: "flag", data: "env", sync: "file", maxBody: "file" });
    const config = resolveServeConfig(input, { hostname: "box" });
    expect([config.listenPort, config.dataDir, config.sync, config.maxBodyBytes, config.nodeId]).toEqual([3333, "/from-env", "normal", 1_000_000, "box"]);
  });

  test("an unset flag or variable does not hide the file's value", () => {
    const { input } = mergeServeInputs({ source: "flag", input: { sync: undefined } }, { source: "file", input: { sync: "off" } });
    expect(input.sync).toBe("off");
  });

  const paths: Array<[string, string | undefined, string[], string | null]> = [
    ["the given file when it exists", "/x.toml", ["/x.toml"], "/x.toml"],
    ["the default file when none is given and it exists", undefined, [DEFAULT_CONFIG_FILE], DEFAULT_CONFIG_FILE],
    ["no file when none is given and the default is absent", undefined, [], null],
  ];
  for (const [name, given, present, want] of paths) {
    test(`reads ${name}`, () => {
      expect(configFilePath(given, (p) => present.includes(p))).toBe(want);
    });
  }

  test("refuses a given file that is not there", () => {
    expect(() => configFilePath("/nope.toml", () => false)).toThrow("cannot read config file /nope.toml: no such file");
  });
});

describe("printing the resolved configuration", () => {
  test("masks secrets and tokens, flattens nested settings and names each source", () => {
    const config = resolveServeConfig({ listen: "127.0.0.1:8086", authToken: "hunter2", peer: "iotdb-2", peerSecret: "s3cret-s3cret-s3cret" }, { hostname: "iotdb-1" });
    const text = renderConfig(config, { listen: "flag", authToken: "env", peer: "file", peerSecret: "file" });
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("s3cret");
    expect(text).toMatch(/^auth-token\s+= "\*+"  # env$/m);
    expect(text).toMatch(/^peer-secret\s+= "\*+"  # file$/m);
    expect(text).toMatch(/^listen-port\s+= 8086  # flag$/m);
    expect(text).toMatch(/^node-id\s+= "iotdb-1"  # default$/m);
    expect(text).toMatch(/^engine\.chunk-points\s+= \d+/m);
  });

  test("names the source of engine settings whose names differ from their flags", () => {
    const input = { hotMemory: "32MiB", flushAge: "1m", retention: "7d", minFreeDisk: "1GiB", maxSeries: "5", walRetention: "1d" };
    const sources = Object.fromEntries(Object.keys(input).map((k) => [k, "flag"]));
    const text = renderConfig(resolveServeConfig({ ...input, peer: "iotdb-2", peerSecret: "s3cret-s3cret-s3cret" }, { hostname: "h" }), sources);
    for (const name of ["hot-memory-bytes", "hot-memory-per-series-bytes", "flush-age-ms", "retention-ms", "min-free-disk-bytes", "max-series-per-database", "frame-retention-ms"]) {
      expect(text).toMatch(new RegExp(`^engine\\.${name}\\s+= \\d+  # flag$`, "m"));
    }
    expect(text).toMatch(/^engine\.hot-memory-per-series-bytes\s+= 0  # flag$/m);
    expect(text).toMatch(/^engine\.chunk-points\s+= \d+  # default$/m);
  });

  test("shows an unset secret as none rather than a mask", () => {
    const text = renderConfig(resolveServeConfig({}, { hostname: "h" }));
    expect(text).toMatch(/^auth-token\s+= \(none\)$/m);
  });
});
