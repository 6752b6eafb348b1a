"README.md's links resolve: relative ones to files in the repository (GitHub renders the notebooks), none to an unhosted site."

import re
from urllib.parse import unquote

from conftest import REPO


def readme_links(text: str) -> list:
    "Targets of markdown links and images, and of HTML href/src attributes, outside fenced code blocks."
    text = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)
    return re.findall(r'\]\(\s*<?([^)\s>]+)', text) + re.findall(r'(?:href|src)="([^"]+)"', text)


def test_readme_relative_links_resolve():
    links = readme_links((REPO / 'README.md').read_text())
    relative = [t for t in links if not re.match(r'[a-z][a-z0-9+.-]*:|#|//', t)]
    assert relative, 'no relative links found: is the link pattern still right?'
    broken = [t for t in relative if not (REPO / unquote(t.split('#')[0].split('?')[0])).exists()]
    assert not broken, f'README.md links to files that are not in the repository: {broken}'
    unhosted = [t for t in links if 'dp-synth.github.io' in t]
    assert not unhosted, f'README.md links to a documentation site that is not published: {unhosted}'
