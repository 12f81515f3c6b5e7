#!/usr/bin/env python3
"""Write MANIFEST.toml for the SCEP test-vector corpus.

Every field is computed here by independent tools only: asn1crypto parsing
and the openssl command line (asn1parse, cms -verify / -decrypt, x509, req,
pkey). Nothing from the Rust project is used.

Also writes, next to each enveloped pkiMessage, `<name>.plaintext.der`: the
bytes `openssl cms -decrypt` produced from its pkcsPKIEnvelope.
"""
import argparse
import atexit
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile

import asn1crypto
import cryptography
from asn1crypto import cms, core, csr, keys, pem, x509

import scep_asn1 as s

MESSAGE_TYPES = {"3": "CertRep", "17": "RenewalReq", "19": "PKCSReq",
                 "20": "CertPoll", "21": "GetCert", "22": "GetCRL"}
PKI_STATUS = {"0": "SUCCESS", "2": "FAILURE", "3": "PENDING"}
FAIL_INFO = {"0": "badAlg", "1": "badMessageCheck", "2": "badRequest",
             "3": "badTime", "4": "badCertID"}

UNIVERSAL_TAGS = {0x04: "OCTET STRING", 0x0c: "UTF8String", 0x13: "PrintableString",
                  0x16: "IA5String", 0x24: "OCTET STRING (constructed)"}

TMP = tempfile.mkdtemp(prefix="scep-manifest-")
atexit.register(shutil.rmtree, TMP, True)


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, **kw)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def tmpfile(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def der_of(data):
    if data.lstrip().startswith(b"-----"):
        _, _, data = pem.unarmor(data)
    return data


def openssl_name(cert_der, which="subject"):
    p = tmpfile("name.der", cert_der)
    r = sh(["openssl", "x509", "-inform", "DER", "-in", p, "-noout", "-" + which,
            "-nameopt", "RFC2253"], text=True)
    out = r.stdout.strip()
    return out.split("=", 1)[1] if "=" in out else out


def has_indefinite(der_bytes):
    p = tmpfile("asn1.der", der_bytes)
    r = sh(["openssl", "asn1parse", "-inform", "DER", "-in", p], text=True)
    return "l=inf" in r.stdout


def reencodes_identically(data, spec):
    try:
        return spec.load(data).dump(force=True) == data
    except Exception:  # noqa: BLE001
        return False


def cert_fields(cert_der):
    c = x509.Certificate.load(cert_der)
    f = {
        "subject": openssl_name(cert_der, "subject"),
        "issuer": openssl_name(cert_der, "issuer"),
        "serial_hex": "%x" % c.serial_number,
        "not_before": c["tbs_certificate"]["validity"]["not_before"].native.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": c["tbs_certificate"]["validity"]["not_after"].native.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "signature_algorithm_oid": c["signature_algorithm"]["algorithm"].dotted,
        "public_key_algorithm": c.public_key.algorithm,
        "public_key_bits": c.public_key.bit_size,
        "sha256_fingerprint": sha256(cert_der),
        "public_key_sha256": sha256(c.public_key.dump()),
        "issuer_equals_subject": c.issuer == c.subject,
    }
    if c.key_usage_value is not None:
        f["key_usage"] = sorted(c.key_usage_value.native)
    if c.basic_constraints_value is not None:
        f["basic_constraints_ca"] = bool(c.basic_constraints_value["ca"].native)
    if c.extended_key_usage_value is not None:
        f["extended_key_usage"] = list(c.extended_key_usage_value.native)
    return f


def csr_fields(der):
    r = csr.CertificationRequest.load(der)
    info = r["certification_request_info"]
    p = tmpfile("csr.der", der)
    subj = sh(["openssl", "req", "-inform", "DER", "-in", p, "-noout", "-subject",
               "-nameopt", "RFC2253"], text=True).stdout.strip()
    ver = sh(["openssl", "req", "-inform", "DER", "-in", p, "-noout", "-verify"], text=True)
    f = {
        "subject": subj.split("=", 1)[1] if "=" in subj else subj,
        "public_key_bits": info["subject_pk_info"].bit_size,
        "public_key_sha256": sha256(info["subject_pk_info"].dump()),
        "signature_algorithm_oid": r["signature_algorithm"]["algorithm"].dotted,
        "openssl_req_verify": "ok" if ver.returncode == 0 else "failed",
        "attribute_oids": [a["type"].dotted for a in info["attributes"]],
    }
    for a in info["attributes"]:
        t = a["type"].native
        if t == "challenge_password":
            f["challenge_password"] = a["values"][0].native
        elif t == "extension_request":
            for ext in a["values"][0]:
                if ext["extn_id"].native == "subject_alt_name":
                    f["san"] = ["%s:%s" % (gn.name, gn.native) for gn in ext["extn_value"].parsed]
                f.setdefault("requested_extension_oids", []).append(ext["extn_id"].dotted)
    return f


def envelope_fields(env_der):
    ci = cms.ContentInfo.load(env_der)
    ed = ci["content"]
    eci = ed["encrypted_content_info"]
    alg = eci["content_encryption_algorithm"]
    f = {
        "content_type_oid": ci["content_type"].dotted,
        "enveloped_data_version": ed["version"].native,
        "content_encryption_oid": alg["algorithm"].dotted,
        "content_encryption_name": alg["algorithm"].native,
        "encrypted_content_type_oid": eci["content_type"].dotted,
        "indefinite_length": has_indefinite(env_der),
    }
    recips = []
    for ri in ed["recipient_infos"]:
        ktri = ri.chosen
        rid = ktri["rid"]
        d = {"type": ri.name}
        if rid.name == "issuer_and_serial_number":
            ias = rid.chosen
            d["rid_issuer"] = ", ".join("%s=%s" % kv for kv in ias["issuer"].native.items())
            d["rid_serial_hex"] = "%x" % ias["serial_number"].native
        else:
            d["rid_subject_key_identifier_hex"] = rid.chosen.native.hex()
        d["key_encryption_oid"] = ktri["key_encryption_algorithm"]["algorithm"].dotted
        recips.append(d)
    f["recipients"] = recips
    return f


def openssl_decrypt(env_der, key_path, cert_path):
    envp = tmpfile("env.der", env_der)
    outp = os.path.join(TMP, "plain.bin")
    if os.path.exists(outp):
        os.remove(outp)
    cmd = ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", envp,
           "-inkey", key_path, "-out", outp]
    if cert_path:
        cmd += ["-recip", cert_path]
    legacy = False
    r = sh(cmd, text=True)
    if r.returncode != 0:
        # single-DES (1.3.14.3.2.7) lives in OpenSSL 3's legacy provider
        cmd += ["-provider", "legacy", "-provider", "default"]
        legacy = True
        r = sh(cmd, text=True)
    if r.returncode != 0:
        return None, "failed: " + r.stderr.strip().splitlines()[-1], legacy
    return open(outp, "rb").read(), "ok", legacy


def openssl_verify(der, content_none=False, cafile=None):
    p = tmpfile("signed.der", der)
    outp = os.path.join(TMP, "econtent.bin")
    cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p, "-out", outp]
    if cafile:
        cmd += ["-CAfile", cafile, "-purpose", "any"]
    else:
        cmd += ["-noverify"]
    if content_none:
        cmd += ["-content", "/dev/null"]
    r = sh(cmd, text=True)
    pretty = " ".join(c if not c.startswith(TMP) else "<file>" for c in cmd)
    if r.returncode != 0:
        return None, "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1], pretty
    return open(outp, "rb").read(), "ok", pretty


def signer_cert_of(sd, sid):
    for c in sd["certificates"] or []:
        if c.name != "certificate":
            continue
        cert = c.chosen
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if cert.issuer == ias["issuer"] and cert.serial_number == ias["serial_number"].native:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def pkimessage_fields(data, meta, vecdir):
    f = {}
    ci = cms.ContentInfo.load(data)
    f["content_type_oid"] = ci["content_type"].dotted
    sd = ci["content"]
    f["signed_data_version"] = sd["version"].native
    f["digest_algorithm_oids"] = [d["algorithm"].dotted for d in sd["digest_algorithms"]]
    eci = sd["encap_content_info"]
    f["econtent_type_oid"] = eci["content_type"].dotted
    econtent = None
    if eci["content"].native is None and not eci["content"].contents:
        f["econtent_present"] = False
    else:
        econtent = eci["content"].native
        f["econtent_present"] = True
        f["econtent_length"] = len(econtent)
    f["der_reencode_identical"] = reencodes_identically(data, cms.ContentInfo)
    if sd["certificates"]:
        # DER wants the SET OF certificates sorted by encoding
        f["certificates_set_der_sorted"] = sd["certificates"].dump() == sd["certificates"].dump(force=True)
    certs = [c.chosen for c in (sd["certificates"] or []) if c.name == "certificate"]
    f["certificates"] = [{"subject": openssl_name(c.dump()), "serial_hex": "%x" % c.serial_number,
                          "sha256_fingerprint": sha256(c.dump())} for c in certs]
    si = sd["signer_infos"][0]
    f["signer_info_count"] = len(sd["signer_infos"])
    f["signer_info_version"] = si["version"].native
    f["signer_digest_oid"] = si["digest_algorithm"]["algorithm"].dotted
    f["signer_digest_name"] = si["digest_algorithm"]["algorithm"].native
    f["signer_signature_oid"] = si["signature_algorithm"]["algorithm"].dotted
    f["signer_signature_name"] = si["signature_algorithm"]["algorithm"].native
    sid = si["sid"]
    f["signer_identifier"] = sid.name
    if sid.name == "issuer_and_serial_number":
        f["signer_sid_serial_hex"] = "%x" % sid.chosen["serial_number"].native
    scert = signer_cert_of(sd, sid)
    if scert is None and meta.get("signer_cert_file"):
        scert = x509.Certificate.load(der_of(open(os.path.join(vecdir, meta["signer_cert_file"]), "rb").read()))
        f["signer_cert_included"] = False
    else:
        f["signer_cert_included"] = scert is not None
    if scert is not None:
        f["signer_cert_subject"] = openssl_name(scert.dump())
        f["signer_cert_issuer"] = openssl_name(scert.dump(), "issuer")
        f["signer_cert_sha256_fingerprint"] = sha256(scert.dump())
        f["signer_cert_issuer_equals_subject"] = scert.issuer == scert.subject
        if meta.get("signer_cert_file"):
            fc = der_of(open(os.path.join(vecdir, meta["signer_cert_file"]), "rb").read())
            f["signer_cert_equals_file"] = meta["signer_cert_file"] if fc == scert.dump() else "MISMATCH"
    f["signed_attribute_oids"] = [a["type"].dotted for a in si["signed_attrs"]]
    names = []
    value_types = {}
    for a in si["signed_attrs"]:
        oid = a["type"].dotted
        names.append(s.SCEP_ATTR_NAMES.get(oid, a["type"].native))
        v = a["values"][0]
        if oid in s.SCEP_ATTR_NAMES:
            value_types[s.SCEP_ATTR_NAMES[oid]] = UNIVERSAL_TAGS.get(v.dump()[0], "tag 0x%02x" % v.dump()[0])
            if len(a["values"]) != 1:
                value_types[s.SCEP_ATTR_NAMES[oid]] += " (%d values)" % len(a["values"])
        if oid == s.OID_MESSAGE_TYPE:
            f["message_type"] = v.parse(core.PrintableString).native
            f["message_type_name"] = MESSAGE_TYPES.get(f["message_type"], "?")
        elif oid == s.OID_TRANSACTION_ID:
            f["transaction_id"] = v.parse(core.PrintableString).native
        elif oid == s.OID_SENDER_NONCE:
            f["sender_nonce_hex"] = v.parse(core.OctetString).native.hex()
        elif oid == s.OID_RECIPIENT_NONCE:
            f["recipient_nonce_hex"] = v.parse(core.OctetString).native.hex()
        elif oid == s.OID_PKI_STATUS:
            f["pki_status"] = v.parse(core.PrintableString).native
            f["pki_status_name"] = PKI_STATUS.get(f["pki_status"], "?")
        elif oid == s.OID_FAIL_INFO:
            f["fail_info"] = v.parse(core.PrintableString).native
            f["fail_info_name"] = FAIL_INFO.get(f["fail_info"], "?")
        elif oid == s.OID_FAIL_INFO_TEXT:
            f["fail_info_text"] = v.parse(core.UTF8String).native
            f["fail_info_text_oid"] = oid
        elif oid == "1.2.840.113549.1.9.5":
            f["signing_time"] = v.native.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif oid == "1.2.840.113549.1.9.4":
            f["message_digest_hex"] = v.native.hex()
    f["signed_attribute_names"] = names
    if value_types:
        f["scep_attribute_value_types"] = value_types

    cafile = os.path.join(vecdir, meta["verify_cert"]) if meta.get("verify_cert") else None
    got, status, cmd = openssl_verify(data, content_none=econtent is None)
    f["openssl_signature_check"] = status
    f["openssl_signature_check_command"] = cmd.replace("<file>", meta["file"], 1).replace(
        "<file>", "econtent.der").replace(os.path.join(vecdir, ""), "")
    if cafile:
        _, st2, cmd2 = openssl_verify(data, content_none=econtent is None, cafile=cafile)
        f["openssl_chain_verify"] = st2
        f["openssl_chain_verify_command"] = cmd2.replace("<file>", meta["file"], 1).replace(
            "<file>", "econtent.der").replace(os.path.join(vecdir, ""), "")

    if econtent and meta["kind"] == "pkimessage":
        if meta.get("econtent_file"):
            ef = open(os.path.join(vecdir, meta["econtent_file"]), "rb").read()
            f["econtent_equals_file"] = meta["econtent_file"] if ef == econtent else "MISMATCH"
        f["econtent_sha256"] = sha256(econtent)
        env = envelope_fields(econtent)
        for k, v in env.items():
            f["envelope_" + k if not k.startswith("content_encryption") else k] = v
        key = meta.get("decrypt_key")
        if key:
            certp = meta.get("decrypt_cert")
            if certp and certp.startswith("<signer certificate embedded in "):
                reqname = certp[len("<signer certificate embedded in "):-1]
                rci = cms.ContentInfo.load(open(os.path.join(vecdir, reqname), "rb").read())
                rsd = rci["content"]
                rc = signer_cert_of(rsd, rsd["signer_infos"][0]["sid"])
                certpath = tmpfile("recip.der", rc.dump())
                pemp = os.path.join(TMP, "recip.pem")
                sh(["openssl", "x509", "-inform", "DER", "-in", certpath, "-out", pemp])
                certpath = pemp
            elif certp:
                certpath = os.path.join(vecdir, certp)
            else:
                certpath = None
            plain, st, legacy = openssl_decrypt(econtent, os.path.join(vecdir, key), certpath)
            f["openssl_decrypt"] = st
            f["openssl_decrypt_command"] = (
                "openssl cms -decrypt -binary -inform DER -in econtent.der -inkey %s -recip %s -out plaintext.der%s"
                % (key, certp or "-", " -provider legacy -provider default" if legacy else ""))
            f["openssl_decrypt_needs_legacy_provider"] = legacy
            if plain is not None:
                f["plaintext_sha256"] = sha256(plain)
                f["plaintext_length"] = len(plain)
                if meta.get("plaintext_file"):
                    pf = open(os.path.join(vecdir, meta["plaintext_file"]), "rb").read()
                    f["plaintext_file"] = meta["plaintext_file"]
                    f["plaintext_equals_file"] = pf == plain
                else:
                    pname = meta["file"][:-len(".der")] + ".plaintext.der"
                    with open(os.path.join(vecdir, pname), "wb") as fh:
                        fh.write(plain)
                    f["plaintext_file"] = pname
                # describe the plaintext
                try:
                    f["plaintext_csr"] = csr_fields(plain)
                except Exception:  # noqa: BLE001
                    try:
                        pci = cms.ContentInfo.load(plain)
                        pcerts = [c.chosen for c in pci["content"]["certificates"]]
                        f["plaintext_kind"] = "degenerate certs-only SignedData"
                        f["plaintext_certificates"] = [{
                            "subject": openssl_name(c.dump()),
                            "issuer": openssl_name(c.dump(), "issuer"),
                            "serial_hex": "%x" % c.serial_number,
                            "sha256_fingerprint": sha256(c.dump())} for c in pcerts]
                    except Exception:  # noqa: BLE001
                        f["plaintext_kind"] = "unrecognised"
    return f


def key_fields(data):
    pk = keys.PrivateKeyInfo.load(der_of(data))
    r = sh(["openssl", "pkey", "-pubout", "-outform", "DER"], input=data)
    return {"key_algorithm": pk.algorithm, "key_bits": pk.bit_size,
            "format": "PKCS#8 PEM, unencrypted",
            "public_key_sha256": sha256(r.stdout)}


def caps_fields(data):
    text = data.decode("ascii")
    return {"exact_text": text, "lines": re.split(r"\r?\n", text.rstrip("\r\n")),
            "line_separator": "CRLF" if "\r\n" in text else "LF",
            "ends_with_newline": text.endswith("\n")}


def capture_meta(work, cap):
    d, idx = cap.split("/")
    with open(os.path.join(work, d, "log.jsonl")) as fh:
        for line in fh:
            e = json.loads(line)
            if e["index"] == int(idx):
                out = {"http_method": e["method"], "http_status": e["status"],
                       "http_content_type": e["content_type"]}
                if e.get("get_message_alphabet"):
                    out["get_message_alphabet"] = e["get_message_alphabet"]
                return out
    return {}


# ------------------------------------------------------------------ TOML
def tkey(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def tval(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(tval(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (tkey(k), tval(x)) for k, x in v.items()) + " }"
    raise TypeError(type(v))


def emit(lines, path, table):
    scal = {k: v for k, v in table.items() if not isinstance(v, dict)}
    subs = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path:
        lines.append("")
        lines.append("[" + ".".join(tkey(p) for p in path) + "]")
    for k, v in scal.items():
        if v is None:  # TOML has no null
            import sys
            sys.stderr.write("manifest: dropping null %s.%s\n" % (".".join(path), k))
            continue
        lines.append("%s = %s" % (tkey(k), tval(v)))
    for k, v in subs.items():
        emit(lines, path + [k], v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--provenance", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    recs = []
    with open(a.provenance) as fh:
        for line in fh:
            arr = json.loads(line)
            meta = {"file": arr[0], "kind": arr[1], "tool": arr[2], "command": arr[3]}
            for kv in arr[4:]:
                k, v = kv.split("=", 1)
                meta[k] = v
            recs.append(meta)

    dpkg = sh(["dpkg-query", "-W", "-f", "${Package}=${Version}\n", "scep", "openssl"], text=True).stdout
    peers = {"dpkg_query": dpkg.strip().splitlines()}
    for line in dpkg.strip().splitlines():
        k, v = line.split("=", 1)
        peers[k] = v
    peers["scepserver_version"] = sh(["scepserver", "-version"], text=True).stdout.strip()
    peers["scepclient_version"] = sh(["scepclient", "-version"], text=True).stdout.strip()
    peers["openssl_version"] = sh(["openssl", "version"], text=True).stdout.strip()
    peers["python"] = platform.python_version()
    peers["asn1crypto"] = asn1crypto.__version__
    peers["cryptography"] = cryptography.__version__

    files = {}
    key_opens = {}
    for m in recs:
        path = os.path.join(a.dir, m["file"])
        data = open(path, "rb").read()
        e = {"kind": m["kind"], "size": len(data), "sha256": sha256(data)}
        prov = {"tool": m["tool"], "command": m["command"]}
        if m.get("capture"):
            prov["captured_exchange"] = m["capture"]
            prov.update(capture_meta(a.work, m["capture"]))
        e["provenance"] = prov
        if m.get("note"):
            e["note"] = m["note"]
        for k in ("decrypt_key", "decrypt_cert", "verify_cert", "request", "signer_key"):
            if m.get(k):
                e[k] = m[k]
        if m.get("decrypt_key"):
            key_opens.setdefault(m["decrypt_key"], []).append(m["file"])
        if m.get("opens"):
            e["opens"] = m["opens"].split(",")
        kind = m["kind"]
        fields = {}
        if kind == "pkimessage":
            fields = pkimessage_fields(data, m, a.dir)
            if m.get("request"):
                rq = cms.ContentInfo.load(open(os.path.join(a.dir, m["request"]), "rb").read())
                rsi = rq["content"]["signer_infos"][0]
                rtx = s.get_attr(rsi, s.OID_TRANSACTION_ID).parse(core.PrintableString).native
                rn = s.get_attr(rsi, s.OID_SENDER_NONCE).parse(core.OctetString).native.hex()
                fields["transaction_id_matches_request"] = fields.get("transaction_id") == rtx
                fields["recipient_nonce_matches_request_sender_nonce"] = fields.get("recipient_nonce_hex") == rn
                fields["sender_nonce_equals_request_sender_nonce"] = fields.get("sender_nonce_hex") == rn
        elif kind == "cert":
            fields = cert_fields(der_of(data))
        elif kind == "key":
            fields = key_fields(data)
        elif kind == "csr":
            fields = csr_fields(data)
        elif kind == "envelope":
            fields = envelope_fields(data)
            plain, st, legacy = openssl_decrypt(data, os.path.join(a.dir, m["decrypt_key"]),
                                                os.path.join(a.dir, m["decrypt_cert"]))
            fields["openssl_decrypt"] = st
            fields["openssl_decrypt_command"] = "openssl cms -decrypt -binary -inform DER -in %s -inkey %s -recip %s -out <plaintext>" % (
                m["file"], m["decrypt_key"], m["decrypt_cert"])
            fields["der_reencode_identical"] = reencodes_identically(data, cms.ContentInfo)
            if plain is not None:
                fields["plaintext_sha256"] = sha256(plain)
                pf = open(os.path.join(a.dir, m["plaintext_file"]), "rb").read()
                fields["plaintext_file"] = m["plaintext_file"]
                fields["plaintext_equals_file"] = pf == plain
        elif kind == "certsonly":
            ci = cms.ContentInfo.load(data)
            sd = ci["content"]
            fields = {"content_type_oid": ci["content_type"].dotted,
                      "signer_info_count": len(sd["signer_infos"]),
                      "econtent_type_oid": sd["encap_content_info"]["content_type"].dotted,
                      "econtent_present": sd["encap_content_info"]["content"].native is not None,
                      "certificates": [{"subject": openssl_name(c.chosen.dump()),
                                        "sha256_fingerprint": sha256(c.chosen.dump())}
                                       for c in sd["certificates"]]}
        elif kind == "signed":
            fields = pkimessage_fields(data, m, a.dir)
            ec = cms.ContentInfo.load(data)["content"]["encap_content_info"]["content"].native
            pf = open(os.path.join(a.dir, m["plaintext_file"]), "rb").read()
            fields["econtent_sha256"] = sha256(ec)
            fields["econtent_equals_file"] = m["plaintext_file"] if ec == pf else "MISMATCH"
        elif kind == "caps":
            fields = caps_fields(data)
        e["fields"] = fields
        files[m["file"]] = e

    # the decrypted plaintexts written by pkimessage_fields
    for name in sorted(os.listdir(a.dir)):
        if name.endswith(".plaintext.der") and name not in files:
            data = open(os.path.join(a.dir, name), "rb").read()
            src = name[:-len(".plaintext.der")] + ".der"
            e = {"kind": "plaintext", "size": len(data), "sha256": sha256(data),
                 "provenance": {"tool": "openssl cms -decrypt (%s)" % peers["openssl_version"],
                                "command": "openssl cms -verify -noverify -binary -inform DER -in %s -out econtent.der; "
                                           "openssl cms -decrypt -binary -inform DER -in econtent.der -inkey %s -recip <cert> -out %s "
                                           "[-provider legacy -provider default for DES-CBC]" % (
                                               src, files[src].get("decrypt_key", "?"), name)},
                 "decrypted_from": src}
            e["note"] = ("decrypted CSR; its fields are under files.%s.fields.plaintext_csr" % json.dumps(src)
                         if "plaintext_csr" in files[src]["fields"] else
                         "decrypted degenerate certs-only SignedData; see files.%s.fields.plaintext_certificates" % json.dumps(src))
            files[name] = e

    doc = {
        "description": "SCEP (RFC 8894) test vectors produced by implementations other than this project; see README.md.",
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "field_sources": "asn1crypto %s parsing and the openssl %s command line only" % (
            asn1crypto.__version__, peers["openssl_version"]),
        "failinfotext_oid": s.OID_FAIL_INFO_TEXT,
        "peers": peers,
        "keys": {k: {"opens": v} for k, v in sorted(key_opens.items())},
        "files": files,
    }
    lines = ["# Generated by build_manifest.py from generate.sh -- do not edit by hand."]
    emit(lines, [], doc)
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")

    import tomllib  # Python 3.11+: check it parses
    with open(a.out, "rb") as fh:
        tomllib.load(fh)


if __name__ == "__main__":
    main()
