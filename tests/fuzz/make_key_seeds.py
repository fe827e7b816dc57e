#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_keyfile.c: key pairs made now
by ldns-keygen (algorithms 13 and 15, ZSK and KSK), BIND-style variants with
comments and timing lines, and broken pairs (wrong algorithm, bad base64,
mismatched halves, bad times, truncated). Each seed is the .key text, one
NUL octet, then the .private text."""
import os
import subprocess
import sys
import tempfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus", "keyfile")


def keygen(d, alg, ksk):
    argv = ["ldns-keygen", "-a", alg] + (["-k"] if ksk else []) + ["example.com"]
    base = subprocess.run(argv, cwd=d, capture_output=True, text=True,
                          check=True).stdout.strip()
    with open(os.path.join(d, base + ".key")) as f:
        pub = f.read()
    with open(os.path.join(d, base + ".private")) as f:
        priv = f.read()
    return pub, priv


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    with tempfile.TemporaryDirectory() as d:
        pairs = {"ecdsa-ksk": keygen(d, "ECDSAP256SHA256", True),
                 "ecdsa-zsk": keygen(d, "ECDSAP256SHA256", False),
                 "ed25519-ksk": keygen(d, "ED25519", True),
                 "ed25519-zsk": keygen(d, "ED25519", False)}
    timing = ("Created: 20260101000000\nPublish: 20260101000000\n"
              "Activate: 20260102000000\nInactive: 20270101000000\n"
              "Delete: 20270201000000\n")
    for name, (pub, priv) in pairs.items():
        seeds[name] = (pub, priv)
        bind_pub = ("; This is a zone-signing key, keyid 1, for example.com.\n"
                    "; Created: 20260101000000 (Thu Jan  1 00:00:00 2026)\n" + pub)
        seeds[name + "-bind"] = (bind_pub, priv.replace("v1.2", "v1.3") + timing)
        seeds[name + "-badtime"] = (pub, priv + "Activate: 2026-01-01\n")
        seeds[name + "-badb64"] = (pub, priv.replace("PrivateKey: ", "PrivateKey: !!"))
        seeds[name + "-noformat"] = (pub, "\n".join(priv.splitlines()[1:]))
        seeds[name + "-trunc"] = (pub[:len(pub) // 2], priv[:len(priv) // 2])
        seeds[name + "-crlf"] = (pub.replace("\n", "\r\n"), priv.replace("\n", "\r\n"))
    e1, e2 = pairs["ecdsa-ksk"], pairs["ecdsa-zsk"]
    seeds["mismatch-ecdsa"] = (e1[0], e2[1])
    seeds["mismatch-ed25519"] = (pairs["ed25519-ksk"][0], pairs["ed25519-zsk"][1])
    seeds["alg-mix"] = (e1[0], pairs["ed25519-ksk"][1])
    seeds["rsa"] = ("example.com. IN DNSKEY 256 3 8 AwEAAb==\n",
                    "Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\n")
    seeds["empty"] = ("", "")
    seeds["comments-only"] = ("; nothing\n;\n", "")
    seeds["flags"] = (e1[0].replace("257 3 13", "385 3 13"), e1[1])
    seeds["protocol"] = (e1[0].replace("257 3 13", "257 4 13"), e1[1])
    for name, (pub, priv) in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(pub.encode() + b"\0" + priv.encode())
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
