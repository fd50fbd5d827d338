"""metaloihi.datasets"""
