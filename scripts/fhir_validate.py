#!/usr/bin/env python3
"""Validates FHIR R4 JSON the service produces or accepts, with a FHIR library made by others.

    fhir_validate.py questionnaire Q.json            # a Questionnaire
    fhir_validate.py response Q.json QR.json         # a QuestionnaireResponse to Q
    fhir_validate.py capability CS.json              # a CapabilityStatement (`/fhir/metadata`)
    fhir_validate.py outcome OO.json                 # an OperationOutcome (an error on `/fhir`)
    fhir_validate.py bundle B.json                   # a searchset Bundle (`/fhir/Questionnaire?url=`)

Run with the Python of scripts/check-fhir's venv (fhir.resources, pinned). Each resource is
parsed by the R4B models of fhir.resources (`model_validate`: required elements, unknown
elements, the types of value[x] choices; R4B's Questionnaire and QuestionnaireResponse have R4's
elements), then checked for the invariants those models do not enforce:

  Questionnaire: que-1 (a group has items, a display none), que-2 (linkIds unique over the whole
  tree), que-4 (not both answerOption and answerValueSet), que-5 (answer lists only on choice-like
  items), que-6 (a display item is neither required nor repeating), que-7 (`exists` compares a
  boolean), que-10 (maxLength only on text-like items), que-11 (not both answerOption and
  initial), que-12 (more than one enableWhen needs enableBehavior), every enableWhen names an
  item that exists and is not itself, status and item types from FHIR's code lists.
  QuestionnaireResponse: status from FHIR's code list, qrs-1 (not both answer and item), every
  linkId is an item of the Questionnaire, each answer's value[x] is the one its item's type takes,
  a non-repeating item has at most one answer.

Exit 0 and "ok" when valid; exit 1 and one line per fault otherwise.
"""

import json
import sys

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

Q_STATUS = {"draft", "active", "retired", "unknown"}
QR_STATUS = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
ITEM_TYPES = {
    "group", "display", "question", "boolean", "decimal", "integer", "date", "dateTime",
    "time", "string", "text", "url", "choice", "open-choice", "attachment", "reference",
    "quantity",
}
ANSWER_LIST_TYPES = {"choice", "open-choice"}
# que-5's expression also allows these (interop.md §2).
ANSWER_LIST_LENIENT = ANSWER_LIST_TYPES | {
    "decimal", "integer", "date", "dateTime", "time", "string", "quantity"}
MAX_LENGTH_TYPES = {"boolean", "decimal", "integer", "string", "text", "url", "open-choice"}
OPERATORS = {"exists", "=", "!=", ">", "<", ">=", "<="}
VALUE_OF_TYPE = {
    "boolean": {"valueBoolean"}, "decimal": {"valueDecimal"}, "integer": {"valueInteger"},
    "date": {"valueDate"}, "dateTime": {"valueDateTime"}, "time": {"valueTime"},
    "string": {"valueString"}, "text": {"valueString"}, "url": {"valueUri"},
    "choice": {"valueCoding"}, "open-choice": {"valueCoding", "valueString"},
    "attachment": {"valueAttachment"}, "reference": {"valueReference"},
    "quantity": {"valueQuantity"},
}


def walk(items, path):
    for i, item in enumerate(items or []):
        p = f"{path}.item[{i}]"
        yield p, item
        yield from walk(item.get("item"), p)


def check_questionnaire(q):
    faults = []
    try:
        Questionnaire.model_validate(q)
    except Exception as e:  # pydantic.ValidationError: report it whole
        faults.append(f"fhir.resources R4B Questionnaire: {e}")
    if q.get("status") not in Q_STATUS:
        faults.append(f"status: {q.get('status')!r} is not a publication status")
    items = list(walk(q.get("item"), "Questionnaire"))
    link_ids = {}
    for p, item in items:
        lid = item.get("linkId")
        if lid in link_ids:
            faults.append(f"{p}: que-2 linkId {lid!r} also at {link_ids[lid]}")
        link_ids.setdefault(lid, p)
    for p, item in items:
        t = item.get("type")
        if t not in ITEM_TYPES:
            faults.append(f"{p}: type {t!r} is not an item type")
        if t == "group" and not item.get("item"):
            faults.append(f"{p}: que-1 a group has items")
        if t == "display" and item.get("item"):
            faults.append(f"{p}: que-1 a display item has no items")
        if "answerOption" in item and "answerValueSet" in item:
            faults.append(f"{p}: que-4 answerOption and answerValueSet")
        if ("answerOption" in item or "answerValueSet" in item) and t not in ANSWER_LIST_LENIENT:
            faults.append(f"{p}: que-5 answers listed on a {t} item")
        if t == "display" and ("required" in item or "repeats" in item):
            faults.append(f"{p}: que-6 a display item is neither required nor repeating")
        if "maxLength" in item and t not in MAX_LENGTH_TYPES:
            faults.append(f"{p}: que-10 maxLength on a {t} item")
        if "answerOption" in item and "initial" in item:
            faults.append(f"{p}: que-11 answerOption and initial")
        when = item.get("enableWhen") or []
        if len(when) > 1 and "enableBehavior" not in item:
            faults.append(f"{p}: que-12 {len(when)} enableWhen need enableBehavior")
        for j, w in enumerate(when):
            target = w.get("question")
            if target not in link_ids:
                faults.append(f"{p}.enableWhen[{j}]: question {target!r} is no item")
            elif target == item.get("linkId"):
                faults.append(f"{p}.enableWhen[{j}]: an item cannot enable itself")
            if w.get("operator") not in OPERATORS:
                faults.append(f"{p}.enableWhen[{j}]: operator {w.get('operator')!r}")
            if w.get("operator") == "exists" and "answerBoolean" not in w:
                faults.append(f"{p}.enableWhen[{j}]: que-7 exists compares a boolean")
    return faults


def check_response(q, qr):
    faults = []
    try:
        QuestionnaireResponse.model_validate(qr)
    except Exception as e:
        faults.append(f"fhir.resources R4B QuestionnaireResponse: {e}")
    if qr.get("status") not in QR_STATUS:
        faults.append(f"status: {qr.get('status')!r} is not a response status")
    by_link = {item.get("linkId"): item for _, item in walk(q.get("item"), "Questionnaire")}
    for p, item in walk(qr.get("item"), "QuestionnaireResponse"):
        answers = item.get("answer") or []
        if answers and item.get("item"):
            faults.append(f"{p}: qrs-1 both answer and item")
        spec = by_link.get(item.get("linkId"))
        if spec is None:
            faults.append(f"{p}: linkId {item.get('linkId')!r} is no item of the Questionnaire")
            continue
        if len(answers) > 1 and not spec.get("repeats"):
            faults.append(f"{p}: {len(answers)} answers to a non-repeating item")
        allowed = VALUE_OF_TYPE.get(spec.get("type"), set())
        for j, a in enumerate(answers):
            values = [k for k in a if k.startswith("value")]
            if len(values) != 1 or values[0] not in allowed:
                faults.append(f"{p}.answer[{j}]: {values} for a {spec.get('type')} item")
    return faults


def check_capability(cs):
    faults = []
    try:
        CapabilityStatement.model_validate(cs)
    except Exception as e:  # pydantic.ValidationError: report it whole
        faults.append(f"fhir.resources R4B CapabilityStatement: {e}")
    if cs.get("status") not in Q_STATUS:
        faults.append(f"status: {cs.get('status')!r} is not a publication status")
    if cs.get("kind") not in {"instance", "capability", "requirements"}:
        faults.append(f"kind: {cs.get('kind')!r} is not a capability statement kind")
    return faults


ISSUE_SEVERITY = {"fatal", "error", "warning", "information"}
# FHIR R4 IssueType (http://hl7.org/fhir/issue-type), the codes a server may use.
ISSUE_TYPES = {
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
}


def check_outcome(oo):
    faults = []
    try:
        OperationOutcome.model_validate(oo)
    except Exception as e:  # pydantic.ValidationError: report it whole
        faults.append(f"fhir.resources R4B OperationOutcome: {e}")
    if not oo.get("issue"):
        faults.append("issue: an OperationOutcome has at least one issue (1..*)")
    for i, issue in enumerate(oo.get("issue") or []):
        if issue.get("severity") not in ISSUE_SEVERITY:
            faults.append(f"issue[{i}].severity: {issue.get('severity')!r} is not a severity")
        if issue.get("code") not in ISSUE_TYPES:
            faults.append(f"issue[{i}].code: {issue.get('code')!r} is not an issue type")
    return faults


def check_bundle(b):
    faults = []
    try:
        Bundle.model_validate(b)
    except Exception as e:  # pydantic.ValidationError: report it whole
        faults.append(f"fhir.resources R4B Bundle: {e}")
    if b.get("type") != "searchset":
        faults.append(f"type: {b.get('type')!r}, expected searchset")
    entries = b.get("entry") or []
    if b.get("total") != len(entries):
        faults.append(f"total: {b.get('total')!r} for {len(entries)} entries")
    for i, e in enumerate(entries):
        faults += [f"entry[{i}].resource: {f}" for f in check_questionnaire(e.get("resource") or {})]
    return faults


def main(argv):
    if len(argv) == 3 and argv[1] == "questionnaire":
        faults = check_questionnaire(json.load(open(argv[2])))
    elif len(argv) == 3 and argv[1] == "bundle":
        faults = check_bundle(json.load(open(argv[2])))
    elif len(argv) == 3 and argv[1] == "outcome":
        faults = check_outcome(json.load(open(argv[2])))
    elif len(argv) == 3 and argv[1] == "capability":
        faults = check_capability(json.load(open(argv[2])))
    elif len(argv) == 4 and argv[1] == "response":
        faults = check_response(json.load(open(argv[2])), json.load(open(argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in faults:
        print(f)
    if faults:
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
