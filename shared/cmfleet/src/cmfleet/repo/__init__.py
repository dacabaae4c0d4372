"""The repository as git sees it: git access (:mod:`cmfleet.repo.git`) and which units a change affects
(:mod:`cmfleet.repo.affected`), used by releases, builds and the tox plugin alike."""
