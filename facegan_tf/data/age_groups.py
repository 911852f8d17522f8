"""Age groups as inclusive year ranges, e.g. the five CACD groups of IPCGAN (Wang et al.,
CVPR 2018): 11-20, 21-30, 31-40, 41-50, 50+ (the last open-ended)."""

from __future__ import annotations

#: The original's CACD age groups (inclusive bounds; the last is open-ended).
CACD_AGE_GROUPS = ((11, 20), (21, 30), (31, 40), (41, 50), (51, None))


def parse_age_groups(spec: str) -> tuple[tuple[int, int | None], ...]:
    """``"11-20,21-30,31-40,41-50,51-"`` -> ((11, 20), ..., (51, None)); bounds inclusive, an
    empty upper bound is open-ended. Groups must be ascending and must not overlap."""
    groups = []
    for part in spec.split(","):
        part = part.strip()
        match = None
        if part.endswith("+"):
            part = part[:-1] + "-"
        if "-" in part:
            low, _, high = part.partition("-")
            try:
                match = (int(low), int(high) if high.strip() else None)
            except ValueError:
                match = None
        if match is None or (match[1] is not None and match[1] < match[0]):
            raise ValueError(
                "Age groups must look like '11-20,21-30,31-40,41-50,51-' (inclusive ranges; "
                f"'51-' or '51+' is open-ended). Received: age_groups={spec!r}"
            )
        groups.append(match)
    for (_, high_a), (low_b, _) in zip(groups, groups[1:]):
        if high_a is None or low_b <= high_a:
            raise ValueError(
                f"Age groups must be ascending and disjoint. Received: age_groups={spec!r}"
            )
    return tuple(groups)


def age_group_of(age: int, groups) -> int | None:
    for index, (low, high) in enumerate(groups):
        if age >= low and (high is None or age <= high):
            return index
    return None
