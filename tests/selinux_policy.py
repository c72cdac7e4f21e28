"""Answers tests/selinux_policy.rs: which permissions a compiled SELinux policy grants.

Usage: /usr/bin/python3 selinux_policy.py TREE < queries.json (TREE: a built policy
source tree: tmp/policy.bin, tmp/*.mod.fc, base.fc)
Each query: {"domain": "sshd_t" | "@attribute", "object": {"path": P} | {"tcp_port": N}
| {"own": true} | {"type": T}, "class": C, "perms": [...], "bools": {NAME: bool}}.
A domain "@attr" stands for every type with that attribute; {"type": T} is an object of
that type itself (the server domain a unix socket connects to, proc_t), {"own": true}
the domain's own (its socket, its /proc/self files). Prints one answer per query, per
domain: {"domain", "label", "missing": [perms the policy does not grant]}.

Labels come from the tree's file_contexts files (the modules' *.mod.fc and base.fc), after
the path aliases of config/file_contexts.subs_dist (/run is looked up as /var/run, as
libselinux does), with libselinux's choice among matching lines approximated: an exact path beats a regular
expression, then the longer fixed prefix, the longer expression, a line with a file type,
the later line. Conditional rules count when their boolean expression, evaluated with
the policy's defaults and the query's "bools", selects their branch. Constraints (MCS)
are not evaluated: every object here is at s0.
"""

import glob
import json
import re
import sys

import setools

META = re.compile(r"[.^$?*+|\[\](){}\\]")


def load_contexts(paths):
    entries = []
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                fields = line.split()
                if not fields or fields[0].startswith("#"):
                    continue
                if len(fields) == 3:
                    regex, kind, context = fields
                elif len(fields) == 2:
                    (regex, context), kind = fields, ""
                else:
                    continue
                regex = (
                    regex.replace("HOME_DIR", "/home/[^/]+")
                    .replace("HOME_ROOT", "/home")
                    .replace("USER", "[^/]+")
                )
                stem = META.search(regex)
                key = (stem is None, stem.start() if stem else len(regex), len(regex), kind != "", len(entries))
                label = None if context == "<<none>>" else context.split(":")[2]
                entries.append((key, re.compile(regex), kind, label))
    return entries


def load_aliases(path):
    """subs_dist's "alias original" pairs, the longer alias first (/run/lock before /run)."""
    pairs = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 2 and not fields[0].startswith("#"):
                pairs.append((fields[0], fields[1]))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def unalias(aliases, path):
    for alias, original in aliases:
        if path == alias or path.startswith(alias + "/"):
            return original + path[len(alias):]
    return path


def label_of(entries, path, cls):
    kinds = {"file": ("", "--"), "dir": ("", "-d"), "sock_file": ("", "-s")}[cls]
    best = None
    for key, regex, kind, label in entries:
        if kind in kinds and regex.fullmatch(path) and (best is None or key > best[0]):
            best = (key, label)
    return best[1] if best else None


def port_type(policy, port):
    best = None
    for portcon in policy.portcons():
        low, high = portcon.ports.low, portcon.ports.high
        if str(portcon.protocol) == "tcp" and low <= port <= high:
            if best is None or high - low < best[0]:
                best = (high - low, portcon.context.type_)
    return str(best[1])


RULES = {}


def rules_of(policy, domain):
    """A domain's allow rules (through its attributes too): one pass over the policy."""
    if domain not in RULES:
        query = setools.TERuleQuery(policy, ruletype=[setools.TERuletype.allow], source=domain)
        found = []
        for rule in query.results():
            try:
                condition, branch = rule.conditional, rule.conditional_block
            except setools.exception.RuleNotConditional:
                condition, branch = None, True
            target = domain if str(rule.target) == "self" else str(rule.target)
            found.append((target, str(rule.tclass), set(rule.perms), condition, branch))
        RULES[domain] = found
    return RULES[domain]


def granted(policy, defaults, domain, target, cls, bools):
    names = {target} | {str(a) for a in policy.lookup_type(target).attributes()}
    perms = set()
    for rule_target, rule_class, allowed, condition, branch in rules_of(policy, domain):
        if rule_class != cls or rule_target not in names:
            continue
        if condition is not None:
            values = {str(b): bools.get(str(b), defaults[str(b)]) for b in condition.booleans}
            if condition.evaluate(**values) != branch:
                continue
        perms |= allowed
    return perms


def main():
    tree = sys.argv[1]
    policy = setools.SELinuxPolicy(f"{tree}/tmp/policy.bin")
    contexts = load_contexts(sorted(glob.glob(f"{tree}/tmp/*.mod.fc")) + [f"{tree}/base.fc"])
    aliases = load_aliases(f"{tree}/config/file_contexts.subs_dist")
    defaults = {str(b): b.state for b in policy.bools()}
    answers = []
    for query in json.load(sys.stdin):
        name = query["domain"]
        if name.startswith("@"):
            domains = sorted(str(t) for t in policy.lookup_typeattr(name[1:]).expand())
        else:
            domains = [name]
        answer = []
        for domain in domains:
            thing = query["object"]
            if "path" in thing:
                label = label_of(contexts, unalias(aliases, thing["path"]), query["class"])
            elif "tcp_port" in thing:
                label = port_type(policy, thing["tcp_port"])
            elif "type" in thing:
                label = thing["type"]
            else:
                label = domain
            if label is None:
                missing = query["perms"]
            else:
                have = granted(policy, defaults, domain, label, query["class"], query["bools"])
                missing = sorted(set(query["perms"]) - have)
            answer.append({"domain": domain, "label": label, "missing": missing})
        answers.append(answer)
    json.dump(answers, sys.stdout)


main()
