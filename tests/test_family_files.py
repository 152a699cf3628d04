"""A family's member files (docs/run-format.md, Families): each member's ``family`` attribute is
O(1) in the family's size, and the family's config is rebuilt from the members present, also
from files of earlier versions (the whole family config in every member's attribute)."""

import json

import h5py
import pytest

from margin_explorer.app.session import RunSession
from margin_explorer.core import api as mx
from margin_explorer.core.errors import RunFileError
from margin_explorer.core.runfile import RunReader
from margin_explorer.core.runner import family_attribute, run_family_to_files

VALUES = [0.05, 0.2, 0.1, 0.4, 0.3, 0.15]  # not sorted: the order is the members' index, not the value's


def _family():
    config = mx.preset("relu2-blobs").with_family(lr=VALUES)
    config.name = "six step sizes"
    config.run.steps = 30
    return config


def _regrouped(paths):
    sessions = []
    for path in paths:
        with RunReader(path) as reader:
            reader.read_arrays()
            sessions.append(RunSession.from_reader(reader))
    return RunSession.grouped(sessions)


def test_a_members_attribute_does_not_grow_with_the_family():
    config = mx.preset("relu2-blobs")
    sizes = [len(json.dumps(family_attribute(config.with_family(seed=range(S)), "0" * 32, 3))) for S in (4, 256)]
    # the same but for the digits of "size" (before: 1,334 and 3,002 characters, all S values in each)
    assert sizes[1] - sizes[0] == len("256") - len("4") and sizes[1] < 300, sizes


@pytest.fixture
def saved(tmp_path):
    config = _family()
    _trainer, paths = run_family_to_files(config, tmp_path / "fam.h5")
    return config, [str(p) for p in paths]


def test_a_family_of_six_saved_and_reopened_regroups_in_order(saved):
    config, paths = saved
    family = _regrouped(paths[::-1])  # opened in any order
    assert family.config.family.vary == "lr" and family.config.family.values == VALUES
    assert family.name == "six step sizes" and len(family.members) == 6
    assert [m.config.optimizer.lr for m in family.members] == VALUES
    for k in range(6):  # the rebuilt config reruns the same members
        assert family.config.member(k).to_dict() == config.member(k).to_dict()
    run = mx.load(paths[4])
    assert run.family["value"] == VALUES[4] and run.family["index"] == 4 and "config" not in run.family
    # the members present are the family: three of six make a family of three
    assert _regrouped([paths[5], paths[1], paths[3]]).config.family.values == [VALUES[1], VALUES[3], VALUES[5]]


def test_files_of_earlier_versions_with_the_whole_config_still_regroup(saved):
    config, paths = saved
    for path in paths:
        with h5py.File(path, "r+") as f:
            attribute = json.loads(f.attrs["family"])
            del attribute["name"]
            f.attrs["family"] = json.dumps({**attribute, "config": config.to_dict()})
    family = _regrouped(paths)
    assert family.config.family.values == VALUES and family.name == "six step sizes"
    assert [m.config.optimizer.lr for m in family.members] == VALUES
    assert mx.load(paths[0]).family["config"]["family"]["values"] == VALUES


def test_a_damaged_family_attribute_is_one_clear_error(saved):
    _config, paths = saved
    with h5py.File(paths[2], "r+") as f:
        f.attrs["family"] = json.dumps({**json.loads(f.attrs["family"]), "index": 9})
    with pytest.raises(RunFileError, match="family attribute is not valid.*index 9 of a family of 6"):
        RunReader(paths[2])
    with h5py.File(paths[3], "r+") as f:
        f.attrs["family"] = json.dumps({**json.loads(f.attrs["family"]), "value": -0.1})
    with pytest.raises(RunFileError, match=r"family attribute is not valid.*lr must be > 0"):
        RunReader(paths[3])
