/**
 * install.sh as an operator meets it, but into a temporary DESTDIR: every file, mode and
 * setting it writes, what it would run on a real box, its refusals, re-runs and uninstall;
 * then the installed binary is started from the DESTDIR with the installed settings, and an
 * upgrade over it keeps the data. Nothing here touches the host's users, units or services.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createServer, type Server } from "node:net";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus } from "../src/ops/status.ts";
import { BUN, REPO, exportDb, removeDir, startNode, tempDir, write } from "./support/node.ts";

const INSTALL = join(REPO, "install.sh");
const scratch: string[] = [];
let binary = "";

beforeAll(() => {
  const out = tempDir("tsdb-pair-install-bin-");
  scratch.push(out);
  binary = join(out, "tsdb-pair");
  const build = spawnSync(BUN, ["build.ts", "--outfile", binary], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
  if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);
}, 300_000);
afterAll(() => scratch.forEach(removeDir));

/** Each installed root holds a copy of the ~120 MB binary: remove them test by test. */
let roots: string[] = [];
afterEach(() => {
  roots.forEach(removeDir);
  roots = [];
});

function destdir(): string {
  const d = tempDir("tsdb-pair-destdir-");
  roots.push(d);
  return d;
}

/** Runs install.sh with POSIX sh (dash on Debian), into `root` unless it is null (the real system). */
function install(root: string | null, args: string[], opts: { env?: Record<string, string>; prefix?: string[] } = {}): SpawnSyncReturns<string> & { out: string } {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  if (root === null) delete env.DESTDIR;
  else env.DESTDIR = root;
  const cmd = [...(opts.prefix ?? []), "sh", INSTALL, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: REPO, env, encoding: "utf8", timeout: 120_000 });
  return Object.assign(r, { out: r.stdout + r.stderr });
}

function mode(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8).padStart(4, "0");
}

/** The KEY=value lines of an environment file, as systemd reads them. */
function envFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const uname = spawnSync("uname", ["-n"], { encoding: "utf8" }).stdout.trim();
const machine = spawnSync("uname", ["-m"], { encoding: "utf8" }).stdout.trim();
const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const hostUser = () => spawnSync("getent", ["passwd", "tsdb-pair"]).status === 0;

describe("install.sh", () => {
  test.skipIf(!has("shellcheck"))("passes shellcheck as a POSIX sh script", () => {
    const r = spawnSync("shellcheck", ["--shell=sh", "--severity=style", INSTALL], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("installs every file with its mode into DESTDIR and only prints what it would run on the host", () => {
    const root = destdir();
    const userBefore = hostUser();
    const r = install(root, ["--binary", binary, "--peer", "iotdb-2"]);
    expect(r.status, r.out).toBe(0);
    const files: Array<[string, string, "file" | "dir"]> = [
      ["usr/local/bin/tsdb-pair", "0755", "file"],
      ["etc/tsdb-pair", "0750", "dir"],
      ["etc/tsdb-pair/tsdb-pair.env", "0640", "file"],
      ["etc/systemd/system/tsdb-pair.service", "0644", "file"],
      ["var/lib/tsdb-pair", "0750", "dir"],
    ];
    for (const [path, want, kind] of files) {
      const full = join(root, path);
      expect([path, existsSync(full) && (kind === "dir" ? statSync(full).isDirectory() : statSync(full).isFile())]).toEqual([path, true]);
      expect([path, mode(full)]).toEqual([path, want]);
    }
    expect(readFileSync(join(root, "usr/local/bin/tsdb-pair")).equals(readFileSync(binary))).toBe(true);
    // Ownership is intent only: the commands a real install runs, printed.
    const wouldRun = [
      "would run: useradd --system --user-group --home-dir /var/lib/tsdb-pair --no-create-home --shell /usr/sbin/nologin tsdb-pair",
      `would run: chown root:root ${root}/usr/local/bin/tsdb-pair`,
      `would run: chown root:tsdb-pair ${root}/etc/tsdb-pair`,
      `would run: chown root:tsdb-pair ${root}/etc/tsdb-pair/tsdb-pair.env`,
      `would run: chown -R tsdb-pair:tsdb-pair ${root}/var/lib/tsdb-pair`,
      "would run: systemctl daemon-reload",
      "would run: systemctl enable tsdb-pair.service",
      "would run: systemctl restart tsdb-pair.service",
    ];
    for (const line of wouldRun) expect(r.stdout.split("\n")).toContain(line);
    expect(r.stdout).not.toMatch(/^\+ /m);
    expect(hostUser()).toBe(userBefore);
    // How to give the twin the same secret.
    expect(r.stdout).toContain("sudo ./install.sh --peer " + uname + " --peer-secret-file peer-secret");
  });

  test("the environment file holds the settings under the serve flags' names and a generated secret", () => {
    const root = destdir();
    expect(install(root, ["--binary", binary, "--peer", "iotdb-2a,iotdb-2b", "--peer", "10.1.2.3:8087", "--listen", "0.0.0.0:9086"]).status).toBe(0);
    const env = envFile(join(root, "etc/tsdb-pair/tsdb-pair.env"));
    expect(env).toEqual({
      TSDB_PAIR_LISTEN: "0.0.0.0:9086",
      TSDB_PAIR_DATA: "/var/lib/tsdb-pair",
      TSDB_PAIR_NODE_ID: uname,
      TSDB_PAIR_PEER: "iotdb-2a,iotdb-2b,10.1.2.3:8087",
      TSDB_PAIR_PEER_SECRET: env.TSDB_PAIR_PEER_SECRET!,
    });
    expect(env.TSDB_PAIR_PEER_SECRET).toMatch(/^[0-9a-f]{64}$/);
    // Every setting named in the file, set or commented, is a serve flag's variable.
    const flags = ["LISTEN", "DATA", "NODE_ID", "AUTH_TOKEN", "SYNC", "MAX_BODY", "NO_AUTO_CREATE", "PEER", "PEER_SECRET", "PEER_SECRET_FILE", "WAL_RETENTION", "WAL_MAX_BYTES", "TLS_CERT", "TLS_KEY", "PEER_CA", "LOG_FORMAT", "MAX_SELECT_POINTS", "MAX_SELECT_SERIES"];
    const named = [...readFileSync(join(root, "etc/tsdb-pair/tsdb-pair.env"), "utf8").matchAll(/^(?:# )?TSDB_PAIR_([A-Z_]+)=/gm)].map((m) => m[1]!);
    for (const n of named) expect(flags).toContain(n);
  });

  test("the unit is hardened, always restarts, starts after the network and keeps /tmp executable", () => {
    const root = destdir();
    expect(install(root, ["--binary", binary, "--peer", "iotdb-2", "--data", "/srv/tsdb"]).status).toBe(0);
    const unit = readFileSync(join(root, "etc/systemd/system/tsdb-pair.service"), "utf8");
    const lines = unit.split("\n");
    const want = [
      "[Unit]",
      "Wants=network-online.target",
      "After=network-online.target time-sync.target",
      "StartLimitIntervalSec=0",
      "[Service]",
      "User=tsdb-pair",
      "Group=tsdb-pair",
      "EnvironmentFile=/etc/tsdb-pair/tsdb-pair.env",
      "ExecStart=/usr/local/bin/tsdb-pair serve",
      "Restart=always",
      "LimitNOFILE=65536",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=/srv/tsdb",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "CapabilityBoundingSet=",
      "[Install]",
      "WantedBy=multi-user.target",
    ];
    for (const line of want) expect(lines).toContain(line);
    expect(unit).toContain("/tmp must stay executable");
    expect(unit).not.toMatch(/^(NoExecPaths|MemoryDenyWriteExecute|TemporaryFileSystem)=/m);
    expect(existsSync(join(root, "srv/tsdb"))).toBe(true);
  });

  test.skipIf(!has("systemd-analyze"))("systemd-analyze verify accepts the unit", () => {
    const root = destdir();
    expect(install(root, ["--binary", binary, "--peer", "iotdb-2"]).status).toBe(0);
    // verify checks that ExecStart exists on this host: point it at the DESTDIR's copy.
    const unit = readFileSync(join(root, "etc/systemd/system/tsdb-pair.service"), "utf8")
      .replace("ExecStart=/usr/local/bin/", `ExecStart=${root}/usr/local/bin/`)
      .replace("EnvironmentFile=/etc/", `EnvironmentFile=${root}/etc/`);
    const dir = destdir();
    writeFileSync(join(dir, "tsdb-pair.service"), unit);
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", "--generators=no", join(dir, "tsdb-pair.service")], { encoding: "utf8", timeout: 60_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("a port below 1024 gets exactly the capability to bind it", () => {
    const root = destdir();
    expect(install(root, ["--binary", binary, "--peer", "iotdb-2", "--listen", "0.0.0.0:443"]).status).toBe(0);
    const unit = readFileSync(join(root, "etc/systemd/system/tsdb-pair.service"), "utf8");
    expect(unit).toContain("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n");
  });

  test("running it again keeps the settings, the secret and the operator's edits, and replaces the binary", () => {
    const root = destdir();
    expect(install(root, ["--binary", binary, "--peer", "iotdb-2"]).status).toBe(0);
    const envPath = join(root, "etc/tsdb-pair/tsdb-pair.env");
    const first = envFile(envPath);
    // The operator turns on a setting by hand.
    writeFileSync(envPath, readFileSync(envPath, "utf8").replace("# TSDB_PAIR_SYNC=full", "TSDB_PAIR_SYNC=normal"));
    const inode = statSync(join(root, "usr/local/bin/tsdb-pair")).ino;
    const again = install(root, ["--binary", binary]);
    expect(again.status, again.out).toBe(0);
    expect(again.stdout).toContain("reinstalled tsdb-pair");
    expect(envFile(envPath)).toEqual({ ...first, TSDB_PAIR_SYNC: "normal" });
    expect(mode(envPath)).toBe("0640");
    expect(statSync(join(root, "usr/local/bin/tsdb-pair")).ino).not.toBe(inode);
    // A setting given again changes that setting only.
    expect(install(root, ["--binary", binary, "--listen", "127.0.0.1:9999"]).status).toBe(0);
    expect(envFile(envPath)).toEqual({ ...first, TSDB_PAIR_SYNC: "normal", TSDB_PAIR_LISTEN: "127.0.0.1:9999" });
  });

  const secrets: Array<[string, (dir: string) => string[], string]> = [
    ["a secret given on the command line", () => ["--peer-secret", "abcdefghijklmnop-0123"], "abcdefghijklmnop-0123"],
    [
      "a bare secret in a file",
      (dir) => {
        writeFileSync(join(dir, "peer-secret"), "\n  0123456789abcdef0123  \n");
        return ["--peer-secret-file", join(dir, "peer-secret")];
      },
      "0123456789abcdef0123",
    ],
    [
      "the twin's environment file",
      (dir) => {
        writeFileSync(join(dir, "twin.env"), "# twin\nTSDB_PAIR_LISTEN=0.0.0.0:8086\nTSDB_PAIR_PEER_SECRET=fedcba9876543210fedc\n");
        return ["--peer-secret-file", join(dir, "twin.env")];
      },
      "fedcba9876543210fedc",
    ],
  ];
  for (const [name, args, want] of secrets) {
    test(`shares the pair secret from ${name}`, () => {
      const root = destdir();
      const r = install(root, ["--binary", binary, "--peer", "iotdb-1", ...args(root)]);
      expect(r.status, r.out).toBe(0);
      expect(envFile(join(root, "etc/tsdb-pair/tsdb-pair.env")).TSDB_PAIR_PEER_SECRET).toBe(want);
      expect(r.stdout).toContain("peer secret: as given");
    });
  }

  describe("refuses, with a clear message", () => {
    let listener: Server;
    let busyPort = 0;
    beforeAll(async () => {
      listener = createServer();
      await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
      busyPort = (listener.address() as { port: number }).port;
    });
    afterAll(() => listener.close());

    const otherArch = machine === "x86_64" ? { byte: 183, name: "aarch64" } : { byte: 62, name: "x86_64" };
    const thisArch = machine === "aarch64" || machine === "arm64" ? "aarch64" : machine;
    const cases: Array<[string, (root: string) => string[], string | (() => string)]> = [
      [
        "a binary built for another architecture",
        (root) => {
          const head = readFileSync(binary).subarray(0, 64);
          head[18] = otherArch.byte;
          head[19] = 0;
          writeFileSync(join(root, "tsdb-pair"), head, { mode: 0o755 });
          return ["--binary", join(root, "tsdb-pair"), "--peer", "iotdb-2"];
        },
        `is built for ${otherArch.name} but this machine is ${thisArch}`,
      ],
      [
        "a file that is not an executable",
        (root) => {
          writeFileSync(join(root, "tsdb-pair"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
          return ["--binary", join(root, "tsdb-pair"), "--peer", "iotdb-2"];
        },
        "is not a Linux executable (no ELF header)",
      ],
      ["a binary that is not there", (root) => ["--binary", join(root, "nope"), "--peer", "iotdb-2"], "no tsdb-pair executable at"],
      ["a first install without a twin", () => ["--binary", binary], "give the twin with --peer HOST"],
      ["a port in use (with --strict)", () => ["--binary", binary, "--peer", "127.0.0.2", "--listen", `0.0.0.0:${busyPort}`, "--strict"], () => `port ${busyPort} is in use on this machine`],
      [
        "a twin whose name does not resolve (with --strict), suggesting the /etc/hosts line",
        () => ["--binary", binary, "--peer", "iotdb-2.invalid", "--strict"],
        "the twin's name iotdb-2.invalid does not resolve on this box. Without DNS, add it to /etc/hosts, e.g.:\n    192.0.2.12  iotdb-2.invalid",
      ],
      ["a peer secret that is too short", () => ["--binary", binary, "--peer", "iotdb-2", "--peer-secret", "short"], "the peer secret is too short (5 characters)"],
      ["a relative data directory", () => ["--binary", binary, "--peer", "iotdb-2", "--data", "data"], "--data must be an absolute path"],
      ["a data directory the service cannot see", () => ["--binary", binary, "--peer", "iotdb-2", "--data", "/home/op/data"], "is under a home directory, which the service cannot see (ProtectHome)"],
      ["a listen address without a port", () => ["--binary", binary, "--peer", "iotdb-2", "--listen", "0.0.0.0"], "invalid --listen 0.0.0.0"],
      ["a value with a space", () => ["--binary", binary, "--peer", "iotdb 2"], "--peer must not contain spaces"],
      ["an unknown option", () => ["--bogus"], "unknown option --bogus"],
    ];
    for (const [name, args, message] of cases) {
      test(name, () => {
        const root = destdir();
        const r = install(root, args(root));
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(typeof message === "string" ? message : message());
        // Nothing was installed.
        expect(existsSync(join(root, "usr/local/bin/tsdb-pair"))).toBe(false);
      });
    }

    test("but only warns about an unresolvable twin when installing into a DESTDIR", () => {
      const root = destdir();
      const r = install(root, ["--binary", binary, "--peer", "iotdb-2.invalid"]);
      expect(r.status).toBe(0);
      expect(r.stderr).toContain("warning: the twin's name iotdb-2.invalid does not resolve");
    });

    test("and finds the twin in the DESTDIR's own /etc/hosts", () => {
      const root = destdir();
      mkdirSync(join(root, "etc"));
      writeFileSync(join(root, "etc/hosts"), "127.0.0.1 localhost\n192.0.2.12  iotdb-2.invalid  # ring A\n");
      const r = install(root, ["--binary", binary, "--peer", "iotdb-2.invalid", "--strict"]);
      expect(r.status, r.out).toBe(0);
      expect(r.stderr).not.toContain("does not resolve");
    });

    const setpriv = isRoot && has("setpriv");
    test.skipIf(!setpriv && isRoot)("a user who is not root, on the real system", () => {
      const prefix = isRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
      const r = install(null, ["--binary", binary, "--peer", "iotdb-2"], { prefix });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("run as root: sudo");
    });

    // Only where systemd is not running: elsewhere this would be a real install.
    test.skipIf(!isRoot || existsSync("/run/systemd/system"))("a machine without systemd", () => {
      const r = install(null, ["--binary", binary, "--peer", "iotdb-2"]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("systemd is not running on this machine");
    });
  });

  test("--uninstall removes the binary and the unit and keeps data and settings; --purge removes those too", () => {
    const root = destdir();
    expect(install(root, ["--binary", binary, "--peer", "iotdb-2"]).status).toBe(0);
    writeFileSync(join(root, "var/lib/tsdb-pair/tsdb.db"), "data");
    const u = install(root, ["--uninstall"]);
    expect(u.status, u.out).toBe(0);
    expect(u.stdout).toContain("would run: systemctl disable --now tsdb-pair.service");
    expect(existsSync(join(root, "usr/local/bin/tsdb-pair"))).toBe(false);
    expect(existsSync(join(root, "etc/systemd/system/tsdb-pair.service"))).toBe(false);
    expect(readFileSync(join(root, "var/lib/tsdb-pair/tsdb.db"), "utf8")).toBe("data");
    expect(existsSync(join(root, "etc/tsdb-pair/tsdb-pair.env"))).toBe(true);
    expect(u.stdout).toContain("--purge removes them");
    // Reinstalling after an uninstall finds the settings and secret again.
    const secret = envFile(join(root, "etc/tsdb-pair/tsdb-pair.env")).TSDB_PAIR_PEER_SECRET;
    expect(install(root, ["--binary", binary]).status).toBe(0);
    expect(envFile(join(root, "etc/tsdb-pair/tsdb-pair.env")).TSDB_PAIR_PEER_SECRET).toBe(secret!);
    const p = install(root, ["--uninstall", "--purge"]);
    expect(p.status, p.out).toBe(0);
    expect(p.stdout).toContain("would run: userdel tsdb-pair");
    for (const path of ["usr/local/bin/tsdb-pair", "etc/systemd/system/tsdb-pair.service", "var/lib/tsdb-pair", "etc/tsdb-pair"]) {
      expect([path, existsSync(join(root, path))]).toEqual([path, false]);
    }
  });

  test(
    "the installed binary serves from the DESTDIR with the installed settings, and an upgrade over it keeps the data",
    async () => {
      const root = destdir();
      // The twin is a loopback address nothing listens on: the link retries there, nowhere else.
      expect(install(root, ["--binary", binary, "--peer", "127.0.0.1:9"]).status).toBe(0);
      const env = envFile(join(root, "etc/tsdb-pair/tsdb-pair.env"));
      const installed = join(root, "usr/local/bin/tsdb-pair");
      const dataDir = join(root, env.TSDB_PAIR_DATA!);
      const start = () => startNode({ command: [installed], dataDir, nodeId: env.TSDB_PAIR_NODE_ID!, env: { ...env }, cwd: root, timeoutMs: 60_000 });

      const node = await start();
      expect((await write(node.url, "temp,line=3 celsius=71.5 1700000000000000000", "db=plant")).status).toBe(204);
      expect(await exportDb(node.url, "plant")).toBe("temp,line=3 celsius=71.5 1700000000000000000\n");
      const status = await fetchStatus(node.url, undefined, { intervalMs: 0 });
      expect(status).toMatchObject({ reachable: true, health: "pass", nodeId: env.TSDB_PAIR_NODE_ID });
      expect(status.version).toBe(spawnSync(installed, ["version"], { encoding: "utf8" }).stdout.split(" ")[1]!);
      expect(status.verdict.level).not.toBe("unhealthy");

      // Upgrade while it runs: the new binary is renamed into place, the running one keeps its file.
      const upgrade = install(root, ["--binary", binary]);
      expect(upgrade.status, upgrade.out).toBe(0);
      expect(upgrade.stdout).toContain("would run: systemctl restart tsdb-pair.service");
      expect(envFile(join(root, "etc/tsdb-pair/tsdb-pair.env"))).toEqual(env);
      expect((await write(node.url, "temp,line=3 celsius=72 1700000001000000000", "db=plant")).status).toBe(204);
      // What systemctl restart does: SIGTERM, then start the (new) binary.
      expect(await node.stop()).toBe(0);
      const again = await start();
      expect(await exportDb(again.url, "plant")).toBe("temp,line=3 celsius=71.5 1700000000000000000\ntemp,line=3 celsius=72 1700000001000000000\n");
      expect(await again.stop()).toBe(0);
    },
    { timeout: 180_000 },
  );
});
