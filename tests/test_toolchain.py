"""ddpd.toolchain: which C++ compiler run-time builds use."""

import stat

from ddpd import toolchain


def test_compiler_is_cxx_on_path_else_none(tmp_path, monkeypatch):
    fake = tmp_path / "my-c++"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CXX", "my-c++")
    assert toolchain.cxx_name() == "my-c++"
    assert toolchain.compiler() == str(fake)
    monkeypatch.delenv("CXX")
    assert toolchain.cxx_name() == "g++"
    assert toolchain.compiler() is None  # no g++ in tmp_path
