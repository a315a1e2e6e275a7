from setuptools import find_packages, setup

setup(
    name="taru",
    version="0.1.0",
    description="A web service that gives people a button for preconfigured commands",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=["bench"]) + ["twisted.plugins"],
    package_data={"taru": ["openapi.yaml"], "twisted": ["plugins/taru_plugin.py"]},
    install_requires=[
        "attrs>=23.1",
        "klein>=23.5",
        "prometheus-client>=0.20",
        "pyyaml>=6",
        "treq>=23.11",
        "twisted>=24.3",
        "zope.interface>=6",
    ],
    extras_require={
        "test": [
            "hypothesis>=6",
            "playwright>=1.50",
            "schemathesis>=4",
        ],
        "dev": [
            "mypy>=1.10",
            "mypy-zope>=1.0",
            "types-PyYAML",
            "ruff>=0.5",
        ],
    },
    entry_points={
        "console_scripts": [
            "taru = taru.cli:main",
            "taru-cli = taru.client.main:main",
        ]
    },
)
