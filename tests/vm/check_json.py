#!/usr/bin/env python3
# check_json.py SCHEMA DEFINITION < JSON: validates JSON against one
# definition ($defs/DEFINITION) of SCHEMA; exits 1 with the reason if not.
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
document = json.load(sys.stdin)
one = {"$defs": schema["$defs"], "$ref": "#/$defs/" + sys.argv[2]}
try:
    jsonschema.Draft202012Validator(one).validate(document)
except jsonschema.ValidationError as error:
    print("invalid against $defs/%s: %s" % (sys.argv[2], error.message), file=sys.stderr)
    sys.exit(1)
