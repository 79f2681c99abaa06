import re, json, sys
pat = re.compile(r'\{:process (\d+), :type :(\w+), :f :(\w+), :key "([^"]*)", :value (nil|"[^"]*")\}')
pending = {}; out = []
for i, line in enumerate(open(sys.argv[1])):
    m = pat.match(line.strip())
    if not m: raise SystemExit(f"line {i+1}: {line}")
    proc, typ, f, key, val = int(m[1]), m[2], m[3], m[4], m[5]
    v = None if val == 'nil' else val[1:-1]
    if typ == 'invoke':
        pending[proc] = dict(client=proc, op=f, key=key, invoke=i * 1000, **({} if f == 'get' else {'value': v}))
    else:
        op = pending.pop(proc); op['complete'] = i * 1000; op['outcome'] = 'ok'
        if f == 'get': op['result'] = v if v else None  # Porcupine's kv reads an absent key as ""
        out.append(op)
for proc, op in pending.items():
    op['complete'] = None; op['outcome'] = 'unknown'; out.append(op)
out.sort(key=lambda o: o['invoke'])
for o in out: print(json.dumps(o))
