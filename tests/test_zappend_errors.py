"""Errors subclass the builtin exception zappend raises in the same case, so code written around
``zappend()`` keeps catching them (see the exception map in docs/coming-from-zappend.md)."""

from __future__ import annotations

import pytest

import versioncube
from versioncube import errors


def test_a_missing_target_parent_is_a_file_not_found_error(tmp_path, small_slice):
    target = tmp_path / "no-such-folder" / "cube"
    with pytest.raises(FileNotFoundError, match="parent folder .*no-such-folder does not exist"):
        versioncube.append([small_slice("2024-01-01")], target_dir=str(target))
    assert not target.parent.exists()
    # an existing parent is fine: the cube's own folder is created
    assert versioncube.append([small_slice("2024-01-01")], target_dir=str(tmp_path / "c")) == 1


def test_a_missing_slice_file_is_a_file_not_found_error(tmp_path, memory_target):
    with pytest.raises(FileNotFoundError, match="file not found"):
        versioncube.append([str(tmp_path / "missing.nc")], target_dir=memory_target)
    with pytest.raises(FileNotFoundError, match="still not available after waiting"):
        versioncube.append(
            [str(tmp_path / "missing.nc")],
            target_dir=memory_target,
            slice_polling={"interval": 0.01, "timeout": 0.02},
        )


def test_an_unreadable_slice_is_an_os_error(tmp_path, memory_target):
    path = tmp_path / "garbage.nc"
    path.write_bytes(b"not a netcdf file" * 10)
    with pytest.raises(OSError, match="garbage.nc: cannot be read"):
        versioncube.append([str(path)], target_dir=memory_target)


def test_a_slice_item_of_the_wrong_type_is_a_type_error(memory_target):
    with pytest.raises(TypeError, match="is of type int"):
        versioncube.append([42], target_dir=memory_target)


def test_slice_sources_that_cannot_be_imported_or_called(memory_target):
    with pytest.raises(ImportError, match="cannot be imported"):
        versioncube.append(["x"], target_dir=memory_target, slice_source="no_such_module.f")
    with pytest.raises(TypeError, match="not a function or class"):
        versioncube.append(["x"], target_dir=memory_target, slice_source="os.sep")


def test_bad_slices_and_steps_are_value_errors(memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target)
    again = small_slice("2024-01-01") + 1  # other values, the same label
    with pytest.raises(ValueError, match="not after the cube's last label"):
        versioncube.append([again], target_dir=memory_target)
    with pytest.raises(ValueError, match="append_step"):
        versioncube.append([small_slice("2024-01-03")], target_dir=memory_target, append_step="1D")


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.ConfigError, ValueError),
        (errors.TargetError, ValueError),
        (errors.TargetNotFoundError, FileNotFoundError),
        (errors.CubeNotFoundError, FileNotFoundError),
        (errors.SliceSourceImportError, ImportError),
        (errors.SliceSourceTypeError, TypeError),
        (errors.SliceOpenError, OSError),
        (errors.SliceNotFoundError, FileNotFoundError),
        (errors.SliceTypeError, TypeError),
        (errors.SliceValidationError, ValueError),
        (errors.SliceChangedError, ValueError),
        (errors.StorageError, OSError),
        (errors.ConcurrentUpdateError, OSError),
    ],
)
def test_the_exception_map(error, builtin):
    assert issubclass(error, builtin)
    assert issubclass(error, errors.VersionCubeError)
