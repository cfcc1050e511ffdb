import { describe, expect, test } from "bun:test";
import { serveInput } from "./cli/index.ts";
import { DEFAULT_MAX_BODY_BYTES, resolveServeConfig, type ServeInput } from "./config.ts";
import { isTsdbError } from "./errors.ts";

const host = { hostname: "gw-1" };

describe("serve configuration", () => {
  test("fills every default", () => {
    const c = resolveServeConfig({}, host);
    expect([c.listenHost, c.listenPort, c.dataDir, c.nodeId, c.authToken, c.sync, c.maxBodyBytes, c.autoCreate]).toEqual([
      "0.0.0.0",
      8086,
      "./data",
      "gw-1",
      null,
      "full",
      DEFAULT_MAX_BODY_BYTES,
      true,
    ]);
  });

  const good: Array<[string, ServeInput, (c: ReturnType<typeof resolveServeConfig>) => unknown, unknown]> = [
    ["a host and port", { listen: "127.0.0.1:9000" }, (c) => [c.listenHost, c.listenPort], ["127.0.0.1", 9000]],
    ["a bare port", { listen: ":9000" }, (c) => [c.listenHost, c.listenPort], ["0.0.0.0", 9000]],
    ["an IPv6 address", { listen: "[::1]:9000" }, (c) => [c.listenHost, c.listenPort], ["::1", 9000]],
    ["sizes with units", { maxBody: "64KiB" }, (c) => c.maxBodyBytes, 65536],
    ["sizes in MB", { maxBody: "25MB" }, (c) => c.maxBodyBytes, 25_000_000],
    ["sync normal", { sync: "normal" }, (c) => c.sync, "normal"],
    ["a bare peer as https when this node serves TLS", { peer: "iotdb-2", peerSecret: "s", tlsCert: "/c.pem", tlsKey: "/k.pem" }, (c) => c.peers, ["https://iotdb-2:8086"]],
    ["a bare peer as http without TLS", { peer: "iotdb-2", peerSecret: "s" }, (c) => c.peers, ["http://iotdb-2:8086"]],
    ["an explicit http peer even with TLS", { peer: "http://iotdb-2:9000", peerSecret: "s", tlsCert: "/c.pem", tlsKey: "/k.pem" }, (c) => c.peers, ["http://iotdb-2:9000"]],
    ["the TLS files as paths", { tlsCert: "/c.pem", tlsKey: "/k.pem", peerCa: "/ca.pem" }, (c) => [c.tlsCert, c.tlsKey, c.peerCa], ["/c.pem", "/k.pem", "/ca.pem"]],
  ];
  for (const [name, input, get, expected] of good) {
    test(`accepts ${name}`, () => expect(get(resolveServeConfig(input, host))).toEqual(expected));
  }

  const bad: Array<[string, ServeInput, string]> = [
    ["a listen address without a port", { listen: "localhost" }, 'invalid --listen "localhost"'],
    ["a port out of range", { listen: ":70000" }, 'invalid --listen ":70000"'],
    ["an unknown sync mode", { sync: "always" }, 'invalid --sync "always"'],
    ["a size that is not a size", { maxBody: "lots" }, 'invalid --max-body "lots"'],
    ["a zero size", { maxBody: "0" }, 'invalid --max-body "0"'],
    ["a node id with a space", { nodeId: "gw 1" }, 'invalid --node-id "gw 1"'],
    ["a TLS certificate without its key", { tlsCert: "/c.pem" }, "--tls-cert needs --tls-key"],
    ["a TLS key without its certificate", { tlsKey: "/k.pem" }, "--tls-key needs --tls-cert"],
  ];
  for (const [name, input, message] of bad) {
    test(`refuses ${name} with a message naming the value`, () => {
      let err: unknown;
      try {
        resolveServeConfig(input, host);
      } catch (e) {
        err = e;
      }
      expect(isTsdbError(err, "config")).toBe(true);
      expect((err as Error).message).toStartWith(message);
    });
  }

  test("flags win over TSDB_PAIR_ environment variables, which win over defaults", () => {
    const env = { TSDB_PAIR_LISTEN: "127.0.0.1:1", TSDB_PAIR_SYNC: "normal", TSDB_PAIR_NO_AUTO_CREATE: "true" };
    const c = resolveServeConfig(serveInput({ listen: "127.0.0.1:2" }, env), host);
    expect([c.listenPort, c.sync, c.autoCreate]).toEqual([2, "normal", false]);
  });
});
