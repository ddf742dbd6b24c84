"""README.md tells the truth: its links resolve inside the repository, its numbers match."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# [text](target) and ![alt](target), and reference definitions "[name]: target".
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def readme_without_code_blocks() -> str:
    return re.sub(r"^```.*?^```", "", README.read_text(), flags=re.MULTILINE | re.DOTALL)


def readme_without_code() -> str:
    """The README's prose: links inside code blocks and spans are examples, not links."""
    return re.sub(r"`[^`\n]*`", "", readme_without_code_blocks())


def link_targets() -> list[str]:
    text = readme_without_code()
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_the_readme_has_relative_links_to_check():
    assert any(not t.startswith(EXTERNAL) and not t.startswith("#") for t in link_targets())


def test_every_relative_link_is_a_file_inside_the_repository():
    for target in link_targets():
        if target.startswith(EXTERNAL) or target.startswith("#"):
            continue
        path = (README.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{target} points outside the repository"
        assert path.exists(), f"{target} does not exist in the repository"


def test_every_anchor_link_names_a_heading():
    text = readme_without_code_blocks()
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE)
    anchors = {github_anchor(heading) for heading in headings}
    for target in link_targets():
        if target.startswith("#"):
            assert target[1:] in anchors, f"no heading for the link {target}"


NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_the_quickstart_counts_the_personas_seed_demo_creates():
    from example_site.shop.management.commands.seed_demo import DEMO_PERSONAS

    (count,) = re.findall(r"seeds (\w+) example personas", README.read_text())
    assert count == NUMBER_WORDS[len(DEMO_PERSONAS)]
