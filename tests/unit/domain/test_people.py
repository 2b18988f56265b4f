"""A person and a company for an address, as the lists show them."""

import pytest

from app.domain.followup import company_of
from app.domain.people import person_of


@pytest.mark.parametrize(
    ("domain", "company"),
    [
        ("buyer.example", "Buyer"),
        ("mail.acme-industries.com", "Acme Industries"),
        ("northwind.co.uk", "Northwind"),
        ("gmail.com", ""),
        ("", ""),
    ],
)
def test_company_of_a_domain(domain: str, company: str) -> None:
    assert company_of(domain) == company


def test_the_display_name_wins_and_the_address_names_a_person_without_one() -> None:
    assert person_of("anna@buyer.example", '"Anna Berg"').name == "Anna Berg"
    assert person_of("anna.berg@buyer.example").name == "Anna Berg"
    assert person_of("Tom_O-Neil@Acme.com", "tom@acme.com").name == "Tom O Neil"
    assert person_of("anna@buyer.example").company == "Buyer"
