import base64
from dataclasses import dataclass

import factory

from tenancy.models import ApiKey, Membership, Organization, Project, User
from tenancy.services import api_key_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Org {n}")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"project-{n}")
    region = "eu"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = "member"


@dataclass
class ApiKeyPair:
    key: ApiKey
    public: str
    secret: str

    @classmethod
    def issue(cls, project, **kwargs) -> "ApiKeyPair":
        key, secret = api_key_create(project=project, **kwargs)
        return cls(key=key, public=key.public_key, secret=secret)

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.public}:{self.secret}".encode()).decode()

    @property
    def bearer(self) -> str:
        return f"Bearer {self.secret}"
