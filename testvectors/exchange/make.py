#!/usr/bin/env python3
"""Enrolment Exchange and MEF Key Retrieval messages written by Python's
json and xml.etree.ElementTree (not by enrolkit), with MANIFEST.toml saying
what each must decode to or why it must be refused.  Run: python3 make.py"""
import base64
import json
import os
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes(range(32))
KEY_ID = "00112233445566778899AABBCCDDEEFF@mef.example.com"
files = []  # (name, bytes, expect, note)


def js(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def xml(root, fields):
    r = ET.Element(root)
    for k, v in fields:
        if isinstance(v, list):  # nested element with children
            e = ET.SubElement(r, k)
            for kk, vv in v:
                ET.SubElement(e, kk).text = vv
        else:
            ET.SubElement(r, k).text = v
    return ET.tostring(r, encoding="unicode").encode()


def add(name, data, expect, mentions=""):
    """mentions: a word the decoder's error must contain (invalid files)."""
    files.append((name, data, expect, mentions))


# MEF Key Retrieval: success and error.
ok = {"Status": True, "Credential": base64.b64encode(KEY).decode(), "CredentialID": KEY_ID,
      "EnroleeID": "CAE-enrolee-1", "Lifetime": 86400}
add("fetch-success.json", js(ok), "valid")
add("fetch-success.xml", xml("fetchCredentialsResponse", [
    ("Status", "true"), ("Credential", ok["Credential"]), ("CredentialID", KEY_ID),
    ("EnroleeID", "CAE-enrolee-1"), ("Lifetime", "86400")]), "valid")
# Exactly the fields of TS-0003 V3.18.0 table 8.3.2.1-5 (no CredentialID),
# as a conformant MEF answers: what our MEF sends by default.
table = {k: v for k, v in ok.items() if k != "CredentialID"}
add("fetch-success-table.json", js(table), "valid")
add("fetch-success-table.xml", xml("fetchCredentialsResponse", [
    ("Status", "true"), ("Credential", ok["Credential"]),
    ("EnroleeID", "CAE-enrolee-1"), ("Lifetime", "86400")]), "valid")
err = {"Status": False, "ErrorString": "unknown KeId"}
add("fetch-error.json", js(err), "valid")
add("fetch-error.xml", xml("fetchCredentialsResponse", [("Status", "false"), ("ErrorString", "unknown KeId")]), "valid")
# Pretty-printed JSON with other member order is still the same message.
add("fetch-success-pretty.json", json.dumps(dict(reversed(list(ok.items()))), indent=2).encode(), "valid")
# Refusals.
add("fetch-success-unknown-field.json", js(dict(ok, Extra=1)), "invalid: unknown field", "unknown field")
add("fetch-error-with-key.json", js(dict(err, Credential=ok["Credential"])), "invalid: Status false with credential fields", "credential fields")
add("fetch-success-short-key.json", js(dict(ok, Credential=base64.b64encode(KEY[:16]).decode())), "invalid: not a 32-octet key", "32-octet")
add("fetch-success-no-lifetime.json", js({k: v for k, v in ok.items() if k != "Lifetime"}), "invalid: Lifetime missing", "Lifetime")
add("fetch-success-string-status.json", js(dict(ok, Status="true")), "invalid: Status is not a boolean", "Status")
add("fetch-success-duplicate.json", b'{"Status":true,"Status":false,"ErrorString":"x"}', "invalid: duplicate field", "duplicate")
add("fetch-success-wrong-root.xml", xml("response", [("Status", "false"), ("ErrorString", "x")]), "invalid: wrong root element", "root element")
add("fetch-error-attribute.xml", b'<fetchCredentialsResponse a="1"><Status>false</Status><ErrorString>x</ErrorString></fetchCredentialsResponse>', "invalid: attributes are not defined", "attribute")
add("fetch-error-doctype.xml", b'<!DOCTYPE x [<!ENTITY e "boom">]><fetchCredentialsResponse><Status>false</Status><ErrorString>&e;</ErrorString></fetchCredentialsResponse>', "invalid: DOCTYPE (entity definitions)", "DOCTYPE")

# Enrolment Exchange.
req = {"supportsCertificateEnrolment": True, "supportsMafProcedures": False, "enrolmentToken": "tok-123"}
add("enrolment-request.json", js(req), "valid")
add("enrolment-request.xml", xml("enrolmentRequest", [
    ("supportsCertificateEnrolment", "true"), ("supportsMafProcedures", "false"), ("enrolmentToken", "tok-123")]), "valid")
instr = {
    "keId": KEY_ID, "enrolmentExpiry": 3600, "enroleeId": "CAE-enrolee-1",
    "certificateEnrolment": {"securityType": ["SAEF", "ESData"], "eku": ["1.3.6.1.5.5.7.3.2"]},
    "mafEnrolment": {"credentialType": "symmetricKey", "mafFqdn": "maf.example.com", "securityType": ["SAEF"]},
    "directKey": [{"targetId": "CSE-b1", "securityType": "SAEF"}, {"targetId": "CSE-b1", "securityType": "ESPrim"}],
    "registrarCse": "CSE-registrar",
}
add("enrolment-instructions.json", js(instr), "valid")
r = ET.Element("enrolmentInstructions")
ET.SubElement(r, "keId").text = KEY_ID
ET.SubElement(r, "enrolmentExpiry").text = "3600"
ET.SubElement(r, "enroleeId").text = "CAE-enrolee-1"
c = ET.SubElement(r, "certificateEnrolment")
for t in ["SAEF", "ESData"]:
    ET.SubElement(c, "securityType").text = t
ET.SubElement(c, "eku").text = "1.3.6.1.5.5.7.3.2"
m = ET.SubElement(r, "mafEnrolment")
ET.SubElement(m, "credentialType").text = "symmetricKey"
ET.SubElement(m, "mafFqdn").text = "maf.example.com"
ET.SubElement(m, "securityType").text = "SAEF"
for t in ["SAEF", "ESPrim"]:
    d = ET.SubElement(r, "directKey")
    ET.SubElement(d, "targetId").text = "CSE-b1"
    ET.SubElement(d, "securityType").text = t
ET.SubElement(r, "registrarCse").text = "CSE-registrar"
add("enrolment-instructions.xml", ET.tostring(r, encoding="unicode").encode(), "valid")
add("enrolment-instructions-bad-eku.json", js(dict(instr, certificateEnrolment={"eku": ["not-an-oid"]})), "invalid: eku is not an OID", "eku")
add("enrolment-instructions-bad-keid.json", js(dict(instr, keId="nope")), "invalid: keId is not a KeId", "keId")
add("enrolment-instructions-repeated-type.json",
    js(dict(instr, directKey=[{"targetId": "CSE-b1", "securityType": "SAEF"}] * 2)), "invalid: the same pair listed twice", "twice")
add("enrolment-instructions-too-many.json",
    js(dict(instr, directKey=[{"targetId": "CSE-%d" % i, "securityType": "SAEF"} for i in range(65)])), "invalid: more than 64 entries", "more than 64")
comp = {"keId": KEY_ID, "procedure": "certificateEnrolment", "success": True}
add("enrolment-completion.json", js(comp), "valid")
add("enrolment-completion.xml", xml("enrolmentCompletion", [("keId", KEY_ID), ("procedure", "certificateEnrolment"), ("success", "true")]), "valid")

# The MEF's refusal of an exchange request (shaped like the retrieval error).
add("enrolment-refused.json", js({"Status": False, "ErrorString": "an Enrolment-Token is required"}), "valid")
add("enrolment-refused.xml", xml("enrolmentRefused", [("Status", "false"), ("ErrorString", "token unknown")]), "valid")
add("enrolment-refused-status-true.json", js({"Status": True, "ErrorString": "x"}), "invalid: a refusal has Status false", "Status false")
add("enrolment-refused-no-reason.json", js({"Status": False}), "invalid: ErrorString missing", "ErrorString")

# TS-0003 V3.18.0 wire profile (crates/exchange/src/v318.rs): the request of
# table 8.3.2.1-1 and the responses of tables 8.3.2.1-2/-3/-4, then the end of
# the exchange. The MAF trust anchor is a real certificate (OpenSSL-made, from
# testvectors/scep), carried as base64 DER.
with open(os.path.join(HERE, "..", "scep", "openssl-ca.pem")) as f:
    pem = f.read()
TA = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
base64.b64decode(TA, validate=True)
v_req = {"certificateEnrolment": True, "mafEnrolment": True, "remoteManagement": False}
add("v318-request.json", js(v_req), "valid")
add("v318-request.xml", xml("enrolmentExchangeRequest", [
    ("certificateEnrolment", "true"), ("mafEnrolment", "false"), ("remoteManagement", "true")]), "valid")
add("v318-request-token.json", js(dict(v_req, enrolmentToken="t")), "invalid: V3.18 has no Enrolment-Token", "enrolmentToken")
add("v318-request-missing.json", js({"certificateEnrolment": True, "mafEnrolment": True}), "invalid: an indication is missing", "remoteManagement")
CERT = {"instructionType": "certificateEnrolment", "uri": "https://est.example.com:8443/.well-known/est"}
MAF = {"instructionType": "mafEnrolment", "credentialType": "symmetricKey",
       "mafKeyRegistrationUri": "https://maf.example.com/keyRegistration",
       "mafKeyRetrievalUri": "https://maf.example.com/keyRetrieval",
       "clientRegistrationUri": "https://maf.example.com/clientRegistration",
       "trustAnchor": [TA], "lifetime": 86400}
RM = {"instructionType": "remoteManagement", "uri": "coaps://dm.example.com:5684"}
END = {"instructionType": "endOfExchange"}
add("v318-responses.json", js({"response": [CERT, MAF, RM, END]}), "valid")


def xml_responses(responses):
    r = ET.Element("enrolmentExchangeResponses")
    for resp in responses:
        e = ET.SubElement(r, "response")
        for k, v in resp.items():
            for item in (v if isinstance(v, list) else [v]):
                ET.SubElement(e, k).text = str(item) if not isinstance(item, bool) else str(item).lower()
    return ET.tostring(r, encoding="unicode").encode()


add("v318-responses.xml", xml_responses([CERT, MAF, RM, END]), "valid")
add("v318-responses-end-only.json", js({"response": [END]}), "valid")
add("v318-responses-no-end.json", js({"response": [CERT]}), "invalid: the end of the exchange is missing", "end of the exchange")
add("v318-responses-end-first.json", js({"response": [END, CERT, END]}), "invalid: end of exchange before the last", "before the last")
add("v318-responses-twice.json", js({"response": [CERT, CERT, END]}), "invalid: two certificate responses", "two certificateEnrolment")
add("v318-responses-no-uri.json", js({"response": [{"instructionType": "certificateEnrolment"}, END]}), "invalid: uri is required", "uri")
add("v318-responses-maf-no-credential.json",
    js({"response": [{k: v for k, v in MAF.items() if k != "credentialType"}, END]}), "invalid: credentialType missing", "credentialType")
add("v318-responses-maf-ip-host.json",
    js({"response": [dict(MAF, mafKeyRegistrationUri="https://192.0.2.1/keyRegistration"), END]}), "invalid: the MAF-FQDN is an address", "MAF-FQDN")
add("v318-responses-foreign-field.json", js({"response": [dict(CERT, lifetime=5), END]}), "invalid: lifetime is a MAF parameter", "lifetime")
add("v318-responses-bad-anchor.json", js({"response": [dict(MAF, trustAnchor=["bm90IGEgY2VydA=="]), END]}), "invalid: not a certificate", "trustAnchor")
add("v318-responses-unknown-type.json", js({"response": [{"instructionType": "firmwareUpdate"}, END]}), "invalid: unknown instruction type", "instruction type")

manifest = ["# Written by make.py (Python json and xml.etree); do not edit.", ""]
for name, data, expect, mentions in files:
    tmp = os.path.join(HERE, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(HERE, name))
    manifest += ['[files."%s"]' % name, 'expect = "%s"' % expect]
    if mentions:
        manifest.append('error_mentions = "%s"' % mentions)
    manifest.append("")
with open(os.path.join(HERE, "MANIFEST.toml"), "w") as f:
    f.write("\n".join(manifest))
