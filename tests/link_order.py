"""The static release build's function order (assets/link-order.txt), from the linker's map.

  python3 tests/link_order.py make BIN MAP RAN OUT   the sections of the functions in RAN (the
      `fn=` names callgrind wrote, unmangled) that BIN (the build with its symbols) and its
      MAP hold, in their order in BIN, into OUT;
  python3 tests/link_order.py check MAP ORDER       how many of ORDER's names the build of
      MAP still has, and where they went; exit 1 when fewer than 90% are found, or when
      fewer than 99% of the first sections are theirs (the order was not applied).
"""
import re
import subprocess
import sys

PREFIX = re.compile(r"^\.text\.(unlikely\.|hot\.|startup\.|exit\.)?")


def text_sections(map_path):
    """(address, size, symbol) of every function section in the map's .text, in order."""
    out = []
    inside = False
    with open(map_path) as f:
        for line in f:
            p = line.split()
            if len(p) == 5 and p[4] == ".text":
                inside = True
                continue
            if not inside:
                continue
            if len(p) == 5 and p[4].startswith("."):
                break
            m = re.search(r":\((\.text\.[^)]*)\)$", line.strip())
            if m and len(p) >= 5:
                out.append((int(p[0], 16), int(p[2], 16), PREFIX.sub("", m.group(1))))
    if not out:
        sys.exit(f"link_order: no .text sections in {map_path}")
    return out


def make(binary, map_path, ran_path, out_path):
    sections = {name: (addr, size) for addr, size, name in text_sections(map_path)}
    by_name, by_addr = {}, {}
    nm = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        p = line.split()
        if len(p) == 3:
            addr = int(p[0], 16)
            by_name[p[2]] = addr
            by_addr.setdefault(addr, []).append(p[2])
    with open(ran_path) as f:
        ran = {line.strip().split("'")[0] for line in f if line.strip()}
    picked, unnamed = {}, 0
    for name in ran:
        if name not in by_name:
            unnamed += 1
            continue
        # The linker folds functions with the same code into one: every name of it.
        for alias in by_addr[by_name[name]]:
            if alias in sections:
                picked[alias] = sections[alias]
    names = sorted(picked, key=lambda n: (picked[n][0], n))
    with open(out_path, "w") as f:
        f.writelines(n + "\n" for n in names)
    size = sum(s for _, s in picked.values())
    print(f"link_order: {len(ran)} functions ran ({unnamed} without a symbol): "
          f"{len(names)} sections, {size:,} bytes, into {out_path}")


def check(map_path, order_path):
    sections = text_sections(map_path)
    with open(order_path) as f:
        order = [line.strip() for line in f if line.strip()]
    wanted = set(order)
    found = [(i, s) for i, s in enumerate(sections) if s[2] in wanted]
    share = len({s[2] for _, s in found}) / max(len(order), 1)
    start = sections[0][0]
    end = max((a + n for _, (a, n, _) in found), default=start)
    print(f"link_order: {len({s[2] for _, s in found})} of {len(order)} names found ({share:.0%}); "
          f"they take the first {(end - start) / 1e6:.2f} MB of the code")
    ok = share >= 0.9
    # Ordered sections come first. A change of code may leave a few out of place (a function
    # folded into another by --icf, a name that now names another function), so at least 99%
    # of the first sections must be ordered ones; without the order it is a few percent.
    head = sum(1 for i, _ in found if i < len(found))
    if found and head < 0.99 * len(found):
        print(f"link_order: FAIL: the ordered functions are not the first code ({head} of the first "
              f"{len(found)} sections are; was the order file passed?)")
        ok = False
    elif head < len(found):
        print(f"link_order: {len(found) - head} ordered functions placed after the others "
              "(a change of code since the order was made)")
    if share < 0.9:
        print("link_order: FAIL: the order is stale (a new toolchain, new crate versions or renamed "
              "functions): run tests/link-order.sh and commit assets/link-order.txt")
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "make":
        make(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(0 if check(*sys.argv[2:]) else 1)
    else:
        sys.exit(__doc__)
