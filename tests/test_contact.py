"""Rater contact data: sealed to the hub's key, masked on screen, never readable by the kiosk."""

import pytest
from nacl.public import PrivateKey

from core.contact import ContactError, load_public_key, mask_phone, open_contact, seal_contact, valid_phone


def test_seal_and_open(tmp_path):
    hub_key = PrivateKey.generate()
    key_file = tmp_path / "hub.pub"
    key_file.write_text(bytes(hub_key.public_key).hex() + "\n")
    sealed = seal_contact("13812345678", load_public_key(key_file))
    assert "13812345678" not in sealed
    assert seal_contact("13812345678", hub_key.public_key) != sealed  # ephemeral key each time
    assert open_contact(sealed, hub_key) == "13812345678"
    with pytest.raises(ContactError):
        open_contact(sealed, PrivateKey.generate())
    with pytest.raises(ContactError):
        open_contact("not base64!", hub_key)


def test_only_mobile_numbers_are_sealed():
    key = PrivateKey.generate().public_key
    for bad in ("", "1381234567", "23812345678", "138123456789", "1381234567x"):
        assert not valid_phone(bad)
        with pytest.raises(ContactError):
            seal_contact(bad, key)


def test_a_bad_key_file_is_a_clear_error(tmp_path):
    key_file = tmp_path / "hub.pub"
    key_file.write_text("xyz")
    with pytest.raises(ContactError, match="64 hex characters"):
        load_public_key(key_file)


def test_mask():
    assert mask_phone("138") == "138"
    assert mask_phone("13812") == "138**"
    assert mask_phone("13812345678") == "138****5678"


def test_case_numbers_are_masked_alike_everywhere():
    from core.contact import mask_case_no

    assert mask_case_no("370211202611280012") == "3702**********0012"
    assert mask_case_no("CA202630") == "CA****30"
    assert mask_case_no("A12") == "***"
